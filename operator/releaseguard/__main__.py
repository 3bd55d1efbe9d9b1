from releaseguard.cli import main

raise SystemExit(main())
