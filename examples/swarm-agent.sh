#!/usr/bin/env bash
# One agent of a swarm working a reposix queue: claim the first ready issue,
# work it, close it, share. Run several at once, on one clone or many; each
# with its own actor: REPOSIX_ACTOR=agent-1 ./swarm-agent.sh
# `work` is yours to replace; here it only leaves a comment.
# REPOSIX_QUEUE_LABEL=x limits the queue to issues labelled x.
set -u
rx() { "${REPOSIX:-reposix}" "$@"; }
work() { rx issue comment "$1" "worked by $REPOSIX_ACTOR" >/dev/null; }
id_of() { sed -n 's/.*"issue":"\([0-9a-f-]*\)".*/\1/p'; }

while true; do
  out=$(rx --json issue claim --next --ttl 10m ${REPOSIX_QUEUE_LABEL:+-l "$REPOSIX_QUEUE_LABEL"}); rc=$?
  case $rc in
    0) ;;                                      # claimed (online or provisional)
    15) rx sync >/dev/null 2>&1; sleep 0.2; continue ;;   # nothing ready yet
    16) break ;;                               # queue empty: done
    *) echo "claim failed ($rc): $out" >&2; sleep 0.5; continue ;;
  esac
  id=$(printf '%s' "$out" | id_of)
  if printf '%s' "$out" | grep -q '"mode":"provisional"'; then
    # Offline claim: do not start before a sync confirms it (9: still
    # offline, 10: not all pushed yet; 14: some claim of ours lost).
    while sout=$(rx --json sync 2>/dev/null); rc=$?; [ "$rc" -eq 9 ] || [ "$rc" -eq 10 ]; do
      sleep 0.2
    done
    if [ "$rc" -eq 14 ]; then
      # Stop, and acknowledge every lost claim sync named.
      for l in $(printf '%s' "$sout" | grep -o '"issue":"[0-9a-f-]*"' | cut -d'"' -f4); do
        rx issue release "$l" >/dev/null
      done
    fi
    # Claim again, now online: a no-op if it is ours, exit 13 if a
    # concurrent claim won.
    if ! rx issue claim "$id" >/dev/null 2>&1; then
      rx issue release "$id" >/dev/null; continue
    fi
  fi
  work "$id"
  rx issue close "$id" >/dev/null
  rx issue release "$id" >/dev/null
  rx sync >/dev/null 2>&1
done
# Last, hear of claims lost since the last sync, and acknowledge them.
sout=$(rx --json sync 2>/dev/null)
if [ $? -eq 14 ]; then
  for l in $(printf '%s' "$sout" | grep -o '"issue":"[0-9a-f-]*"' | cut -d'"' -f4); do
    rx issue release "$l" >/dev/null
  done
  rx sync >/dev/null 2>&1
fi
