#!/bin/sh
# textgen as 2 ranks (--dist) under mpirun, for scripts that run textgen
# themselves (examples/resume.sh takes this file as its program):
#   TG_MPIRUN=/usr/bin/mpirun TG_TEXTGEN=build/examples/textgen mpirun_textgen.sh ARGS...
exec "$TG_MPIRUN" -np 2 --oversubscribe "$TG_TEXTGEN" --dist "$@"
