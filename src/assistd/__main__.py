from assistd.cli import main

raise SystemExit(main())
