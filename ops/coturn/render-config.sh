#!/bin/sh
# Renders ops/coturn/turnserver.conf.template into a coturn config with the
# secret and addresses from the environment (mode 0600, never committed).
#   render-config.sh <template> <output>
# POSIX sh and sed only, so it runs inside the coturn image too. Refuses a
# missing variable, a weak TURN_SECRET, or values with characters that have no
# business in them.
set -eu

template=${1:?usage: render-config.sh <template> <output>}
output=${2:?usage: render-config.sh <template> <output>}

for name in TURN_SECRET TURN_REALM TURN_EXTERNAL_IP TURN_LISTEN_IP TURN_TLS_CERT TURN_TLS_KEY; do
	eval "value=\${$name:-}"
	if [ -z "$value" ]; then
		echo "render-config.sh: $name is not set" >&2
		exit 1
	fi
	case "$value" in
	*[!A-Za-z0-9._:/+=@-]*)
		echo "render-config.sh: $name has characters outside [A-Za-z0-9._:/+=@-]" >&2
		exit 1
		;;
	esac
done
if [ "${#TURN_SECRET}" -lt 32 ]; then
	echo "render-config.sh: TURN_SECRET must be at least 32 random characters (npm run secrets -- TURN_SECRET)" >&2
	exit 1
fi

umask 077
tmp="$output.tmp.$$"
sed \
	-e "s|\${TURN_SECRET}|$TURN_SECRET|g" \
	-e "s|\${TURN_REALM}|$TURN_REALM|g" \
	-e "s|\${TURN_EXTERNAL_IP}|$TURN_EXTERNAL_IP|g" \
	-e "s|\${TURN_LISTEN_IP}|$TURN_LISTEN_IP|g" \
	-e "s|\${TURN_TLS_CERT}|$TURN_TLS_CERT|g" \
	-e "s|\${TURN_TLS_KEY}|$TURN_TLS_KEY|g" \
	"$template" >"$tmp"
mv "$tmp" "$output"
