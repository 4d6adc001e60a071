#!/usr/bin/env bash
# What the tests need besides Rust, made ready on a Debian machine; idempotent, so every run of
# scripts/test.sh calls it. Installing needs root (apt); when the packages are already there, it
# only (re)starts the private mail servers.
#
# - Dovecot and Postfix for the e-mail tests (sandbox/tests/sandbox/email.rs): installed with
#   Postfix unconfigured ("No configuration": the system instance stays off), then run by
#   scripts/mail-servers.sh as a private instance on 127.0.0.1 ports 31024-31026, 31143, 31465
#   and 31993 (state in /tmp/omnihub-mail, where the tests look).
# - Debian's chromium for the console's browser tests (web/e2e), driven by playwright-core.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/steps.sh
source scripts/steps.sh

missing=()
if ! command -v dovecot >/dev/null || ! command -v postfix >/dev/null ||
  [[ ! -x /usr/lib/dovecot/lmtp ]]; then
  missing+=(dovecot-imapd dovecot-lmtpd postfix)
fi
if ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi

if ((${#missing[@]})); then
  step "install ${missing[*]}"
  if [[ $EUID -ne 0 ]]; then
    echo "the tests need the Debian packages: ${missing[*]}" >&2
    echo "install them as root (or run this script as root), then run the tests again" >&2
    exit 1
  fi
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

step "mail servers"
bash scripts/mail-servers.sh start
chromium --version
node --version
finish_step
