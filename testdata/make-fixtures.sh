#!/usr/bin/env bash
# Regenerates every certificate fixture in this directory with openssl
# (Debian 12: OpenSSL 3.0). Private keys and requests are made in a temporary
# directory that is deleted on exit: only certificates are written here.
# testdata/README.md describes each fixture and its expected verdict.
#
# Every fixture except client-recipe.pem has fixed validity dates (openssl ca
# -selfsign -startdate/-enddate), so regenerating changes keys, signatures and
# fingerprints but not verdicts. client-recipe.pem follows the mod_client_certs
# README literally (openssl x509 -req -days), so its validity starts when it
# is made.
#
# Usage: testdata/make-fixtures.sh   (set OPENSSL to use another binary)
set -euo pipefail

cd "$(dirname "$0")"
OPENSSL=${OPENSSL:-/usr/bin/openssl}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Validity windows (YYYYMMDDHHMMSSZ).
VALID_FROM=20260101000000Z
VALID_TO=21260101000000Z
EXPIRED_FROM=20200101000000Z
EXPIRED_TO=20210101000000Z
FUTURE_FROM=21000101000000Z
FUTURE_TO=21260101000000Z

# Every command is logged to the original stderr (fd 3), with the temporary
# directory shown as $tmp: testdata/README.md quotes this transcript.
exec 3>&2
log() { printf '%s\n' "$*" | sed "s|$tmp|\$tmp|g" >&3; }
ossl() {
	log "openssl$(printf ' %q' "$@")"
	"$OPENSSL" "$@"
}

# A minimal "openssl ca" set-up, used with -selfsign (or -cert for the chain).
mkdir "$tmp/newcerts"
: >"$tmp/index.txt"
cat >"$tmp/ca.cnf" <<CNF
[ca]
default_ca = fixture_ca

[fixture_ca]
dir            = $tmp
database       = $tmp/index.txt
new_certs_dir  = $tmp/newcerts
serial         = $tmp/serial
default_md     = sha256
policy         = policy_anything
unique_subject = no
copy_extensions = none

[policy_anything]
commonName = optional

# Used by "openssl req" to make the requests; the subject comes from -subj.
[req]
distinguished_name = dn
prompt             = no
utf8               = yes
string_mask        = utf8only

[dn]
CNF

# key NAME ALGORITHM-ARGS...: a private key in $tmp/NAME.key.
key() {
	local name=$1
	shift
	ossl genpkey -quiet "$@" -out "$tmp/$name.key"
}
ec_key() { key "$1" -algorithm EC -pkeyopt ec_paramgen_curve:P-256; }
rsa_key() { key "$1" -algorithm RSA -pkeyopt "rsa_keygen_bits:$2"; }

# cert NAME SERIAL SUBJECT START END EXTENSIONS [extra openssl ca args...]:
# a request for $tmp/NAME.key with subject SUBJECT, self-signed (unless the
# extra args name a -cert) by "openssl ca" with the [ext] section EXTENSIONS,
# written to NAME.pem.
cert() {
	local name=$1 serial=$2 subject=$3 start=$4 end=$5 ext=$6
	shift 6
	printf '[ext]\n%s\n' "$ext" >"$tmp/$name.ext"
	log "# $name.pem: serial $serial, extensions file \$tmp/$name.ext:"
	sed 's/^/#   /' "$tmp/$name.ext" >&3
	echo "$serial" >"$tmp/serial"
	ossl req -new -config "$tmp/ca.cnf" -key "$tmp/$name.key" -subj "$subject" -out "$tmp/$name.csr"
	local signer=(-selfsign -keyfile "$tmp/$name.key")
	if [ "${1:-}" = -cert ]; then
		signer=(-cert "$2" -keyfile "$3")
		shift 3
	fi
	ossl ca -batch -config "$tmp/ca.cnf" "${signer[@]}" -in "$tmp/$name.csr" -preserveDN -notext \
		-startdate "$start" -enddate "$end" -extfile "$tmp/$name.ext" -extensions ext -out "$name.pem" "$@" 2>"$tmp/ca.log" ||
		{ cat "$tmp/ca.log" >&2; return 1; }
}

CLIENT_EXT='basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = clientAuth'
HAMLET='otherName:1.3.6.1.5.5.7.8.5;UTF8:hamlet@shakespeare.lit'

# (a) The recipe from mod_client_certs' README, literally (4096-bit RSA,
# openssl req -new, then openssl x509 -req -signkey), with -days 36500.
cat >"$tmp/client.cnf" <<'CNF'
[req]
prompt = no
x509_extensions = v3_extensions
req_extensions = v3_extensions
distinguished_name = distinguished_name

[v3_extensions]
extendedKeyUsage = clientAuth
keyUsage = digitalSignature,keyEncipherment
basicConstraints = CA:FALSE
subjectAltName = @subject_alternative_name

[subject_alternative_name]
otherName.0 = 1.3.6.1.5.5.7.8.5;FORMAT:UTF8,UTF8:hamlet@shakespeare.lit

[distinguished_name]
commonName = Your Name
emailAddress = hamlet@shakespeare.lit
CNF
ossl genrsa -out "$tmp/client.key" 4096 2>/dev/null
ossl req -key "$tmp/client.key" -new -out "$tmp/client.req" -config "$tmp/client.cnf" -extensions v3_extensions
ossl x509 -req -days 36500 -in "$tmp/client.req" -signkey "$tmp/client.key" -out client-recipe.pem \
	-extfile "$tmp/client.cnf" -extensions v3_extensions 2>/dev/null

# (b) Only a Microsoft UPN otherName: must never be taken for an xmppAddr.
ec_key upn-only
cert upn-only 1002 /CN=admin $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = otherName:1.3.6.1.4.1.311.20.2.3;UTF8:admin@corp.example"

# (c) xmppAddr with the wrong string type (RFC 6120 requires UTF8String).
ec_key xmppaddr-bmpstring
cert xmppaddr-bmpstring 1003 /CN=hamlet $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = otherName:1.3.6.1.5.5.7.8.5;BMPSTRING:hamlet@shakespeare.lit"
ec_key xmppaddr-ia5string
cert xmppaddr-ia5string 1004 /CN=hamlet $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = otherName:1.3.6.1.5.5.7.8.5;IA5STRING:hamlet@shakespeare.lit"

# hex STRING: STRING's bytes as hex digits.
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

# An xmppAddr UTF8String with a NUL byte: "hamlet@shakespeare.lit\0.evil".
ec_key xmppaddr-nul
cert xmppaddr-nul 1005 /CN=hamlet $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = @san
[san]
otherName.0 = 1.3.6.1.5.5.7.8.5;IMPLICIT:12U,FORMAT:HEX,OCTETSTRING:$(hex hamlet@shakespeare.lit)00$(hex .evil)"

# (d) Empty subject, SAN with only an otherName, marked critical (RFC 5280
# 4.2.1.6): crypto/x509 lists such a SAN as an unhandled critical extension.
ec_key critical-san-empty-subject
cert critical-san-empty-subject 1006 / $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = critical,$HAMLET"

# (e) IDN domain, as a U-label and as an A-label: both normalise to
# alice@bücher.example. Non-ASCII values need FORMAT:UTF8 (which needs the
# section form, as the mod_client_certs recipe uses): without it openssl
# reads the bytes as Latin-1 and double-encodes them.
ec_key idn-ulabel
cert idn-ulabel 1007 /CN=alice $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = @san
[san]
otherName.0 = 1.3.6.1.5.5.7.8.5;FORMAT:UTF8,UTF8:alice@bücher.example"
ec_key idn-alabel
cert idn-alabel 1008 /CN=alice $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = otherName:1.3.6.1.5.5.7.8.5;UTF8:alice@xn--bcher-kva.example"

# (f) Upper case JID: normalises to alice@example.org.
ec_key uppercase
cert uppercase 1009 /CN=Alice $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = otherName:1.3.6.1.5.5.7.8.5;UTF8:Alice@Example.ORG"

# A look-alike: "hаmlet" with U+0430 CYRILLIC SMALL LETTER A.
ec_key lookalike
cert lookalike 1010 /CN=hamlet $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = @san
[san]
otherName.0 = 1.3.6.1.5.5.7.8.5;FORMAT:UTF8,UTF8:hаmlet@shakespeare.lit"

# Validity in the past, and in the future.
ec_key expired
cert expired 1011 /CN=hamlet $EXPIRED_FROM $EXPIRED_TO "$CLIENT_EXT
subjectAltName = $HAMLET"
ec_key not-yet-valid
cert not-yet-valid 1012 /CN=hamlet $FUTURE_FROM $FUTURE_TO "$CLIENT_EXT
subjectAltName = $HAMLET"

# Weak signature (SHA-1) and weak key (RSA 1024).
rsa_key sha1 2048
cert sha1 1013 /CN=hamlet $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = $HAMLET" -md sha1
rsa_key rsa1024 1024
cert rsa1024 1014 /CN=hamlet $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = $HAMLET"

# A CA certificate carrying hamlet's xmppAddr.
ec_key ca
cert ca 1015 "/CN=Shakespeare Test CA" $VALID_FROM $VALID_TO "basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectAltName = $HAMLET"

# serverAuth only.
ec_key serverauth-only
cert serverauth-only 1016 /CN=hamlet $VALID_FROM $VALID_TO "basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $HAMLET"

# A full JID: forces the resource "balcony".
ec_key full-jid
cert full-jid 1017 /CN=hamlet $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = otherName:1.3.6.1.5.5.7.8.5;UTF8:hamlet@shakespeare.lit/balcony"

# Two xmppAddrs and a DNS name.
rsa_key two-xmppaddrs 2048
cert two-xmppaddrs 1018 /CN=hamlet $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = $HAMLET,otherName:1.3.6.1.5.5.7.8.5;UTF8:horatio@shakespeare.lit,DNS:shakespeare.lit"

# Ed25519.
key ed25519 -algorithm ED25519
cert ed25519 1019 /CN=hamlet $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = $HAMLET"

# A chain in one PEM file: hamlet's leaf signed by chain-ca, then chain-ca.
ec_key chain-ca
cert chain-ca 1020 "/CN=Elsinore CA" $VALID_FROM $VALID_TO "basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign"
ec_key chain-leaf
cert chain-leaf 1021 /CN=hamlet $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = $HAMLET
authorityKeyIdentifier = keyid" -cert chain-ca.pem "$tmp/chain-ca.key"
log "cat chain-leaf.pem chain-ca.pem >chain.pem; rm chain-leaf.pem chain-ca.pem"
cat chain-leaf.pem chain-ca.pem >chain.pem
rm chain-leaf.pem chain-ca.pem

# DER: an ECDSA certificate for hamlet, then broken variants of it.
ec_key der
cert der 1022 /CN=hamlet $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = $HAMLET"
ossl x509 -in der.pem -outform DER -out hamlet.der
rm der.pem
log "rm der.pem; head -c 200 hamlet.der >truncated.der; { cat hamlet.der; printf 'trailing junk'; } >trailing-data.der"
head -c 200 hamlet.der >truncated.der
{ cat hamlet.der; printf 'trailing junk'; } >trailing-data.der

# PEM files with a request (a non-certificate block): before a certificate,
# and alone.
ec_key csr-cert
cert csr-cert 1023 /CN=hamlet $VALID_FROM $VALID_TO "$CLIENT_EXT
subjectAltName = $HAMLET"
ossl req -new -config "$tmp/ca.cnf" -key "$tmp/csr-cert.key" -subj /CN=hamlet -out "$tmp/hamlet.csr"
log "cat \$tmp/hamlet.csr csr-cert.pem >csr-and-cert.pem; cp \$tmp/hamlet.csr csr-only.pem; rm csr-cert.pem"
cat "$tmp/hamlet.csr" csr-cert.pem >csr-and-cert.pem
cp "$tmp/hamlet.csr" csr-only.pem
rm csr-cert.pem

# Not a certificate at all, and a PEM block whose base64 is broken.
log "printf 'This is not a certificate.\\n\\x00\\x01\\x02\\xff\\xfe garbage\\n' >garbage.bin"
printf 'This is not a certificate.\n\x00\x01\x02\xff\xfe garbage\n' >garbage.bin
log "printf -- '-----BEGIN CERTIFICATE-----\\nMIIB!!not base64!!\\n-----END CERTIFICATE-----\\n' >broken-base64.pem"
printf -- '-----BEGIN CERTIFICATE-----\nMIIB!!not base64!!\n-----END CERTIFICATE-----\n' >broken-base64.pem

echo "fixtures written to $(pwd)" >&2
