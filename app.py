"""infersight's Streamlit app: a thin shell over engine/, analysis/ and reports/.

Run it with `streamlit run app.py -- --db PATH_OR_URL` (or set INFERSIGHT_DB); `make demo` starts it
on the demo store. Pages: Recommend, Explore, Compare, Trends, Runs, Reports, Run (start a run, sweep or
peak search as a job on this machine: runner.jobs). The page shown is the
sidebar choice, or `?page=NAME` in the URL. Every page's logic lives in infersight/webapp/, which
calls the same functions as the CLI and the HTML reports.
"""

import streamlit as st

from infersight.webapp import PAGES, store_url

st.set_page_config(page_title="infersight", page_icon=":bar_chart:", layout="wide")
names = list(PAGES)
asked = st.query_params.get("page", names[0])
page = st.sidebar.radio("Page", names, index=names.index(asked) if asked in names else 0, key="page")
st.query_params["page"] = page
st.sidebar.caption(f"store: {store_url()}")
PAGES[page](store_url())
