#!/bin/sh
# certbot deploy hook: installs the renewed certificate where the TLS proxy and
# coturn read it, then restarts both (a TURN restart drops relays for a moment;
# renewals come every ~60 days).
#   certbot certonly --standalone -d media-1.example.com \
#     --deploy-hook /opt/secureconnect/ops/media-host/certbot-deploy-hook.sh
# Port 80 must be open for the HTTP-01 challenge (nftables.conf).
set -eu
: "${RENEWED_LINEAGE:?run by certbot as a deploy hook}"
# coturn runs as nobody/nogroup in its image (as turnserver with Debian's package: TLS_GROUP=turnserver).
group=${TLS_GROUP:-nogroup}
install -d -m 0750 -g "$group" /etc/secureconnect/tls
install -m 0644 "$RENEWED_LINEAGE/fullchain.pem" /etc/secureconnect/tls/fullchain.pem
install -m 0640 -g "$group" "$RENEWED_LINEAGE/privkey.pem" /etc/secureconnect/tls/privkey.pem
if systemctl is-active --quiet secureconnect-media.service; then
	docker compose -f /opt/secureconnect/ops/media-host/compose.yaml restart tls-proxy coturn
elif systemctl is-active --quiet coturn.service; then
	systemctl restart coturn.service
fi
