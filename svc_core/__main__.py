from svc_core.cli import main

main()
