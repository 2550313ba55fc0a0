from agentdistill.cli import main

raise SystemExit(main())
