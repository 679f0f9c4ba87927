from syno_cli.main import main

main()
