package prosody_test

import (
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/plugins/prosody"
)

// TestConfigVirtualHost: a zero field leaves its line out (the plugin's
// default), a set one writes it; the test-only NoComponent drops
// saslcert_component.
func TestConfigVirtualHost(t *testing.T) {
	tests := []struct {
		name    string
		cfg     prosody.Config
		want    []string
		notWant []string
	}{
		{
			name:    "zero",
			cfg:     prosody.Config{Component: "certs.example.org"},
			want:    []string{"VirtualHost \"example.org\"\n", "\tmodules_enabled = { \"saslcert\" }\n", "\tsaslcert_component = \"certs.example.org\"\n"},
			notWant: []string{"saslcert_timeout", "saslcert_lookup_burst", "saslcert_lookup_rate", "saslcert_forward"},
		},
		{
			name: "all",
			cfg: prosody.Config{Component: "certs.example.org", Timeout: 2500 * time.Millisecond,
				LookupBurst: prosody.DefaultLookupBurst, LookupRate: prosody.DefaultLookupRate, NoForward: true},
			want: []string{"\tsaslcert_timeout = 2.5\n", "\tsaslcert_lookup_burst = 50\n", "\tsaslcert_lookup_rate = 5\n",
				"\tsaslcert_forward = false\n"},
		},
		{
			name:    "no-component",
			cfg:     prosody.Config{Component: "certs.example.org", NoComponent: true},
			notWant: []string{"saslcert_component"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := tc.cfg.VirtualHost("example.org")
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out, w) {
					t.Errorf("has %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestConfigString: the whole configuration has the global section, one
// VirtualHost per domain and the Component section reading the secret
// from its file.
func TestConfigString(t *testing.T) {
	out := prosody.Config{Domains: []string{"a.example", "b.example"}, Component: "certs.example",
		SecretFile: "/etc/saslcert/component.secret", PluginDir: "/usr/local/lib/saslcert/prosody",
		ComponentInterface: "127.0.0.1", ComponentPort: 5347}.String()
	for _, w := range []string{
		"plugin_paths = { \"/usr/local/lib/saslcert/prosody\" }\n",
		"component_ports = { 5347 }\n",
		"VirtualHost \"a.example\"\n",
		"VirtualHost \"b.example\"\n",
		"Component \"certs.example\"\n",
		`component_secret = assert(io.open("/etc/saslcert/component.secret")`,
	} {
		if !strings.Contains(out, w) {
			t.Errorf("lacks %q:\n%s", w, out)
		}
	}
	if i, j := strings.Index(out, "VirtualHost"), strings.Index(out, "Component \""); i > j {
		t.Errorf("the Component section comes before the VirtualHosts:\n%s", out)
	}
}
