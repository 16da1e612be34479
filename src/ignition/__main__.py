from ignition.cli import main

raise SystemExit(main())
