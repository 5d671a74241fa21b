"""Import published MLPerf Inference results (a submission tree) into the store as runs.

Each tree is judged by the rules of its round (rules.py: one table per round in rules/, copied from
MLCommons' submission checker): benchmarks and folder aliases, headline fields, required compliance
tests, accuracy targets, latency limits, publication date. v5.x quirks handled besides those below:
free-text "WARNING: ..." lines wrapped over several lines in summaries (kept as notes); llama3.1,
deepseek-r1, whisper, rgat, pointpainting; checker spellings (`llama3_1-8b`); open-division model
folders mapped to their closed benchmark (mapping.py); quoted accuracy numbers (SDXL); results
MLCommons infers from another scenario (MultiStream from SingleStream: 8 x the 99th-percentile
estimate); whisper's and llama3.1-8b Interactive's tokens/s headlines that the table labels
"Samples/s" and "Queries/s"; no TEST05 from v5.0 on; compliance required of closed and network
results only.

`import_tree(store, path)` reads closed|open|network/<Submitter>/{systems,results,measurements,
compliance} and stores every result as a run (provenance 'imported') with its four cards,
the parsed summary as its performance log and accuracy.txt as its accuracy log; see importer.py.
Modules: summary.py and detail.py parse LoadGen's two logs, accuracy.py and compliance.py the
accuracy, compliance and power files, tree.py finds results, benchmarks.py knows each
benchmark of a round (from rules.py), mapping.py maps open-division model folders, headline.py
picks the headline as MLCommons' table does, cards.py builds the cards.

Format quirks (found in the v4.1 results and MLCommons' summary_results.json, and in
LoadGen's and the submission checker's sources for other rounds); the importer handles all:

- Folder spelling: scenario folders are "Offline", "SingleStream", ... for most submitters but
  "offline", "server", "singlestream", "multistream" for others (Google, UntetherAI); the
  compliance and measurements folders follow the results folder's spelling.
- Server headline: v4.1's table uses the *completed* rate (detail key
  result_completed_samples_per_sec), v4.0's the *scheduled* one. Some v4.1 submissions ran an
  older LoadGen whose summary heads with "Scheduled samples per second" and prints "Completed
  samples per second" under Additional Stats (Google tpu_v5e server, UntetherAI
  h13_u2_preview_dc server): the label, not its position, decides.
- Printing precision: summaries print server rates with 2 decimals, offline rates and every
  detail-log double with C++'s default 6 significant digits, hence "Samples per second:
  756960", detail values like 5e+09 and 2.95e+06, and 1.26685e+06 for rates over a million.
  The table copies the detail log's 6-digit figure (632229 for a summary's 632229.06). Without a
  detail log the summary's figure is stored; rounded to 6 digits it equals the table's
  (585207.78 -> 585208).
- Latency headline: for SingleStream and MultiStream the table gives the early-stopping
  estimate (90th, resp. 99th per-query percentile) in ms, ns / 1e6 unrounded, not the
  "90th percentile latency (ns)" line the summary heads with (386829 vs 386822 ns). A run
  too short for the 99th-percentile estimate says so over three wrapped lines. MultiStream
  summaries add a "Per-query latency:" heading: their percentiles are per query.
- LLM headlines are tokens/s: llama2-70b and mixtral-8x7b log tokens ("Tokens per second",
  "Completed tokens per second", printed twice in server summaries with different padding);
  gptj's are inferred ("... (inferred)": samples/s x 69), and the summary prints the inferred
  server rate rounded from the full-precision rate (217.47) while the table has the detail
  log's 217.466. v4.0 llama2 servers were ranked by completed samples/s.
- Other rounds: v4.0 summaries head servers with "Scheduled samples per second"; v5.x prints
  "90.0th percentile latency (ns)" and "Early stopping 90.0th percentile estimate"; v5.x
  Interactive folders hold Server runs ("Scenario : Server"). A summary whose scenario differs
  from its folder's otherwise is imported only where the checker infers that result
  (headline.inferred_headline), flagged.
- Missing files: 14 of the 109 v4.1 results have no mlperf_log_detail.txt (all dlrm-v2,
  UntetherAI h13_u1_preview_dc server, r760_u6_slim offline): imported from the summary, with
  the settings and seeds of its "Test Parameters Used" section. gptj has no compliance folder
  (it requires no test). systems/ also holds system_descriptions.tsv files (ignored).
- System JSON: numbers as strings ("accelerators_per_node": "4", "host_processor_core_count":
  "112", "number_of_nodes": "1"), "N/A" for counts and names (CPU-only systems: accelerator
  "N/A" x "0"), other_software_stack a dict for some submitters and a string for others,
  power-only fields for power submissions. All are kept as written (SystemCard.from_mlperf).
- Power (performance/power/ and run_1/spl.txt): the table's Power_Result is the mean of the
  positive Watts readings strictly inside the detail log's power_begin..power_end (Offline,
  Server: Watts), or that times the window over result_query_count, in millijoules per query
  (SingleStream, MultiStream). r760_u6_slim offline has readings but no detail log: no window,
  so no power figure is stored (never a guessed one).
- Compliance: TEST01/04/05 verify files end in "TEST PASS|FAIL"; TEST06 (llama2, mixtral)
  prints "<check> pass: True|False". Five v4.1 TEST01 accuracy checks say "TEST FAIL"
  (deterministic-mode data mismatch); the TEST01/accuracy/ files MLCommons accepted instead are
  not in this copy, so those runs are stored with TEST01 "FAIL" and compliant false.
- Accuracy files print per benchmark ("accuracy=76.076%", "mAP=37.325%", a JSON dict with f1,
  "AUC=80.166%", "Accuracy: mean = 0.86112", Python dicts with rouge1 ... tokens_per_sample,
  "{'FID_SCORE': .., 'CLIP_SCORE': ..}"); "-99" and "-99.9" folders often hold the same run.
- The answer key names model "resnet" for folder resnet50, writes latency units "Latency (ms)",
  and covers the whole round (937 rows) while a copy may hold a subset; measurements JSON file
  names vary by submitter and spell data types freely ("fp8", "float8", "INT8").
"""

from runner.importers.mlperf.detail import DetailLog, parse_detail
from runner.importers.mlperf.importer import import_tree
from runner.importers.mlperf.report import ImportReport, Skipped
from runner.importers.mlperf.summary import parse_summary

__all__ = ["import_tree", "ImportReport", "Skipped", "parse_summary", "parse_detail", "DetailLog"]
