from querywatch.cli import main

main()
