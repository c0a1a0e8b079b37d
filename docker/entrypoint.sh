#!/bin/sh
# The image's entrypoint: `docker run skyline start` runs `skyline start`.
#
# First it waits, within ENTRYPOINT_WAIT_S seconds (default 60; 0 skips the wait), for the
# Redis and SQL servers that Skyline's settings name (REDIS_URL, DATABASE_URL or the file
# in SKYLINE_CONFIG): containers of one stack start together, and a command that finds no
# server yet would fail. A server that never answers ends the container with one line
# saying which, and a nonzero status.
#
# Then `exec` replaces this shell with skyline, so the signals Docker sends reach skyline
# itself (SIGTERM on `docker stop`: the master lets running jobs finish, the dashboard its
# open requests) and the container's exit status is skyline's.
set -eu

python "$(dirname "$0")/wait_for_services.py"
exec skyline "$@"
