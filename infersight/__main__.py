from infersight.cli import main

main()
