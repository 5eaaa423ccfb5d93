// Package packaging holds the Debian package of saslcert and its tests; it
// has no Go API. `make package` (scripts/package.sh) builds
// dist/saslcert_<version>_<arch>.deb with nfpm from:
//
//   - nfpm.yaml: what goes where (/usr/bin/saslcert, the Prosody plugin in
//     /usr/share/saslcert/prosody, the unit, the config file, the docs);
//   - saslcert.service: the hardened systemd unit (user saslcert,
//     ProtectSystem=strict, StateDirectory=saslcert, the component secret
//     as the credential component.secret);
//   - saslcert.toml: /etc/saslcert/saslcert.toml, every setting commented
//     with its default;
//   - debian/postinst, prerm, postrm: the system user, /var/lib/saslcert,
//     the secret (root:prosody 0640); the service is never started by the
//     package.
//
// The tests install the package on the machine they run on (root, dpkg),
// run the unit's ExecStart as systemd would (or start it with systemctl
// where systemd runs) against a test Prosody, and log in with SASL EXTERNAL;
// TestIntegrationManualSetup runs the README's setup commands as written.
// They skip without root, dpkg or Prosody unless SASLCERT_REQUIRE_PACKAGE
// is set.
package packaging
