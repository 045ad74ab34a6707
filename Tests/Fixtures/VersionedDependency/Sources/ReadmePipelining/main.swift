// Written by scripts/check-fixtures.sh from the README second Swift example.
