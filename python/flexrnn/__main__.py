from flexrnn.cli import main

raise SystemExit(main())
