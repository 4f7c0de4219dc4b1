#!/bin/sh
# Your deploy (kubectl, helm, terraform, ...).
set -eu
echo "deploying ${CUSTODY_SUBJECT:?} to ${CUSTODY_ENVIRONMENT:?}"
