#!/usr/bin/env bash
# Compiles the ejabberd module (plugins/ejabberd/*.erl) with erlc against the
# headers of Debian's ejabberd 23.01 package (no network). Usage:
#   scripts/build-ejabberd-module.sh [OUTDIR]
# OUTDIR (default plugins/ejabberd/ebin) receives mod_saslcert.beam and the
# other mod_saslcert_*.beam of plugins/ejabberd/mod_saslcert*.erl. If OUTDIR is .../mod_saslcert/ebin, the script also
# writes .../mod_saslcert/mod_saslcert.spec, which makes ejabberd (ext_mod)
# add OUTDIR to its code path at start when .../ is its contributed modules
# directory ($CONTRIB_MODULES_PATH, default ~ejabberd/.ejabberd-modules):
#   scripts/build-ejabberd-module.sh /var/lib/ejabberd/.ejabberd-modules/mod_saslcert/ebin
# EJABBERD_INCLUDE and ERLANG_LIB override where the headers are.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-plugins/ejabberd/ebin}
inc=${EJABBERD_INCLUDE:-$(ls -d /usr/lib/x86_64-linux-gnu/ejabberd-*/include /usr/lib/*/ejabberd-*/include 2>/dev/null | head -n1 || true)}
lib=${ERLANG_LIB:-/usr/lib/erlang/lib}
if [ -z "$inc" ] || [ ! -f "$inc/logger.hrl" ]; then
  echo "build-ejabberd-module: ejabberd's headers not found (apt-get install ejabberd; or set EJABBERD_INCLUDE)" >&2
  exit 1
fi
command -v erlc >/dev/null || { echo "build-ejabberd-module: erlc not found (apt-get install erlang-dev)" >&2; exit 1; }
ebin=$(dirname "$inc")/ebin
mkdir -p "$out"
# -pa: ejabberd's and p1_xmpp's beams for the behaviours (gen_mod) and parse transforms.
xinc=$(ls -d "$lib"/p1_xmpp-*/include "$lib"/xmpp-*/include 2>/dev/null | head -n1 || true)
erlc -Werror -I "$inc" -I "$xinc" -pa "$ebin" $(for d in "$lib"/p1_*/ebin; do printf -- '-pa %s ' "$d"; done) \
  -o "$out" plugins/ejabberd/mod_saslcert*.erl
echo "built $(cd "$out" && ls mod_saslcert*.beam | sed "s|^|$out/|" | tr "\n" " ")"
if [ "$(basename "$out")" = ebin ] && [ "$(basename "$(dirname "$out")")" = mod_saslcert ]; then
  printf '{summary, "saslcert: client certificate logins decided by the saslcert component"}.\n{author, "saslcert"}.\n' \
    > "$(dirname "$out")/mod_saslcert.spec"
  echo "wrote $(dirname "$out")/mod_saslcert.spec"
fi
