# Sourced by the recipes after they set their defaults (as Kaldi's utils/parse_options.sh):
# `--some-name VALUE` sets the shell variable some_name, which must already have a default, so a
# misspelt option is an error rather than silently ignored. Also defines run_stage N: true when
# stage N lies within --stage .. --stop-stage.
while [ $# -gt 0 ]; do
  case "$1" in
    --*)
      name=${1#--}; name=${name//-/_}
      if [ -z "${!name+set}" ] || [ $# -lt 2 ]; then echo "unknown option or missing value: $1" >&2; exit 2; fi
      printf -v "$name" '%s' "$2"; shift 2 ;;
    *) echo "unexpected argument: $1" >&2; exit 2 ;;
  esac
done
run_stage() { [ "$1" -ge "$stage" ] && [ "$1" -le "$stop_stage" ]; }
