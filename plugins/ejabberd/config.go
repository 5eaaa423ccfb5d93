// Package ejabberd renders the ejabberd 23.01 configuration that attaches
// saslcert: the c2s listener that verifies client certificates against a CA
// (tls_verify, c2s_cafile), the ejabberd_service listener for the component,
// mod_delegation for urn:xmpp:saslcert:1 (the server's disco lists it) and
// mod_saslcert. The module itself is the *.erl files of this directory,
// compiled by scripts/build-ejabberd-module.sh; this package lives beside
// them so that the options it writes and the options the module reads
// change together.
//
// `saslcert ejabberd config` prints Config.String for admins, and
// internal/ejabberdtest starts its test servers with Config.Listen,
// Config.Top and Config.Modules, so the module's tests run the
// configuration admins paste. The package only renders (YAML strings are
// JSON-quoted, which YAML reads back unchanged); the caller validates. It
// imports only the standard library.
package ejabberd

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout is mod_saslcert's timeout option's default.
const DefaultTimeout = 5 * time.Second

// DefaultLookupBurst and DefaultLookupRate are mod_saslcert's lookup_burst
// and lookup_rate defaults: certificate lookups per client address at once,
// then per second (as the Prosody plugin's).
const (
	DefaultLookupBurst = 50
	DefaultLookupRate  = 5
)

// Config is saslcert's part of an ejabberd configuration.
type Config struct {
	// Domains are the hosts the component serves (mod_saslcert is loaded
	// on every host; String names them in a comment).
	Domains []string
	// Component is the component's JID.
	Component string
	// Secret is the component's password in the ejabberd_service listener
	// (ejabberd.yml cannot read it from a file: keep the file 0640).
	Secret string
	// SecretFile holds the same secret on its first line; mod_saslcert
	// reads it at start to key the auth stamps.
	SecretFile string
	// CAFile is c2s_cafile: the CA certificates (PEM) client certificates
	// must chain to (the embedded CA's root.crt and ca.crt, or the
	// organisation's).
	CAFile string
	// C2SInterface and C2SPort are the c2s listener's address.
	C2SInterface string
	C2SPort      int
	// ComponentInterface and ComponentPort are where ejabberd listens for
	// the component.
	ComponentInterface string
	ComponentPort      int
	// Timeout is mod_saslcert's timeout (0: left out, DefaultTimeout).
	Timeout time.Duration
	// NoCache turns mod_saslcert's cache off (cache: false).
	NoCache bool
	// NoPrefetch turns mod_saslcert's prefetch off (prefetch: false).
	NoPrefetch bool
	// LookupBurst and LookupRate are mod_saslcert's lookup_burst and
	// lookup_rate (0: left out, the module's defaults).
	LookupBurst int
	LookupRate  float64
	// NoticeDelay is mod_saslcert's notice_delay, how long session notices
	// wait to be sent as one batch (0: left out, the module's 50 ms).
	NoticeDelay time.Duration
}

// String is the whole configuration for admins: a header, then Top, the
// listeners and the modules, each under a comment naming where it goes.
func (c Config) String() string {
	var b strings.Builder
	w := writer(&b)
	w("# saslcert for ejabberd 23.01 (printed by `saslcert ejabberd config`).")
	w("# Merge each part into ejabberd.yml: add the listeners to listen:, the modules to modules:.")
	w("# This text holds the component secret: keep the file it goes into readable by ejabberd only.")
	w("# Served hosts: %s (mod_saslcert runs on every host of this ejabberd).", strings.Join(c.Domains, ", "))
	w("")
	w("################################################################ top level")
	b.WriteString(c.Top())
	w("")
	w("################################################################ under listen:")
	w("listen:")
	b.WriteString(c.Listen())
	w("")
	w("################################################################ under modules:")
	w("modules:")
	b.WriteString(c.Modules())
	return b.String()
}

// Top is what goes at the top level: c2s_cafile, and the ACL and access
// rule that let the component take the delegated namespace.
func (c Config) Top() string {
	var b strings.Builder
	w := writer(&b)
	w("# client certificates must chain to these CAs; saslcert then decides who may log in")
	w("c2s_cafile: %s", q(c.CAFile))
	w("acl:")
	w("  saslcert_component:")
	w("    server: %s", q(c.Component))
	w("access_rules:")
	w("  saslcert_delegation:")
	w("    allow: saslcert_component")
	return b.String()
}

// Listen is the two entries of listen: (each a YAML list item indented by
// two spaces).
func (c Config) Listen() string {
	var b strings.Builder
	w := writer(&b)
	w("  # clients: SASL EXTERNAL is offered only with tls_verify")
	w("  - port: %d", c.C2SPort)
	w("    ip: %s", q(c.C2SInterface))
	w("    module: ejabberd_c2s")
	w("    starttls_required: true")
	w("    tls_verify: true")
	w("  # the saslcert component, on this machine only, alone on its listener: ejabberd lets every")
	w("  # component of a listener send from (check_from) and, with global_routes, receive for all")
	w("  # of that listener's hosts, so another component there could answer in saslcert's name")
	w("  - port: %d", c.ComponentPort)
	w("    ip: %s", q(c.ComponentInterface))
	w("    module: ejabberd_service")
	w("    check_from: true")
	w("    global_routes: false")
	w("    hosts:")
	w("      %s:", q(c.Component))
	w("        password: %s", q(c.Secret))
	return b.String()
}

// Modules is the two entries of modules: (indented by two spaces).
func (c Config) Modules() string {
	var b strings.Builder
	w := writer(&b)
	w("  # the server's disco lists urn:xmpp:saslcert:1 (clients such as poezio look for it)")
	w("  mod_delegation:")
	w("    namespaces:")
	w("      \"urn:xmpp:saslcert:1\":")
	w("        access: saslcert_delegation")
	w("  # scripts/build-ejabberd-module.sh builds it")
	w("  mod_saslcert:")
	w("    component: %s", q(c.Component))
	w("    secret_file: %s", q(c.SecretFile))
	if c.Timeout > 0 {
		w("    timeout: %d", int(c.Timeout.Round(time.Second)/time.Second))
	}
	if c.NoCache {
		w("    cache: false")
	}
	if c.NoPrefetch {
		w("    prefetch: false")
	}
	if c.LookupBurst > 0 || c.LookupRate > 0 {
		w("    # certificate lookups per client address (IPv6: per /64): at once, then per second")
	}
	if c.LookupBurst > 0 {
		w("    lookup_burst: %d", c.LookupBurst)
	}
	if c.LookupRate > 0 {
		w("    lookup_rate: %s", strconv.FormatFloat(c.LookupRate, 'f', -1, 64))
	}
	if c.NoticeDelay > 0 {
		w("    notice_delay: %d", c.NoticeDelay.Milliseconds())
	}
	return b.String()
}

// q quotes s for YAML (a JSON string is a YAML double-quoted scalar).
func q(s string) string { return strconv.Quote(s) }

func writer(b *strings.Builder) func(format string, a ...any) {
	return func(format string, a ...any) { fmt.Fprintf(b, format+"\n", a...) }
}
