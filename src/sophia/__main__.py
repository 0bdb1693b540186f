from sophia.cli.main import main

main()
