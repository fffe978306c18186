from openepay.cli import main

main()
