// Written by scripts/check-fixtures.sh from the README first Swift example.
