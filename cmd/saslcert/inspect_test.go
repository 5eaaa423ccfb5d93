package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fingerprints computes, independently of the code under test, the
// "sha256:<hex>" fingerprint of every certificate crypto/x509 can parse in
// the fixture file path (PEM CERTIFICATE blocks, or the whole file as DER).
func fingerprints(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var ders [][]byte
	if bytes.Contains(data, []byte("-----BEGIN")) {
		for rest := data; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if b.Type == "CERTIFICATE" {
				ders = append(ders, b.Bytes)
			}
		}
	} else {
		ders = [][]byte{data}
	}
	var fps []string
	for _, der := range ders {
		if _, err := x509.ParseCertificate(der); err != nil {
			continue
		}
		sum := sha256.Sum256(der)
		fps = append(fps, "fingerprint:         sha256:"+hex.EncodeToString(sum[:]))
	}
	return fps
}

// recipeNow is the clock for client-recipe.pem: the mod_client_certs recipe
// cannot fix the start of the validity period, so the certificate is valid
// from whenever make-fixtures.sh ran; testNow unless that is later.
func recipeNow(t *testing.T) time.Time {
	t.Helper()
	data, err := os.ReadFile(td + "client-recipe.pem")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("client-recipe.pem: no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if start := c.NotBefore.Add(time.Hour); start.After(testNow) {
		return start
	}
	return testNow
}

const hamlet = "hamlet@shakespeare.lit"

func TestInspectFixtures(t *testing.T) {
	tests := []struct {
		name      string
		args      []string // after "saslcert cert inspect"
		recipe    bool     // use recipeNow instead of testNow
		code      int
		stdout    []string
		notStdout []string
		stderr    []string
	}{
		{
			name: "ok/client-recipe", args: []string{"--jid", hamlet, td + "client-recipe.pem"}, recipe: true, code: exitOK,
			stdout: []string{
				td + "client-recipe.pem: certificate 1 of 1",
				"subject:             emailAddress=hamlet@shakespeare.lit,CN=Your Name",
				"issuer:              emailAddress=hamlet@shakespeare.lit,CN=Your Name",
				"validity:            valid for 3649", // 36500 days, less the time since make-fixtures.sh ran
				"key:                 RSA 4096",
				"signature algorithm: SHA256-RSA",
				"CA:                  no",
				"key usage:           digitalSignature, keyEncipherment\n",
				"extended key usage:  clientAuth\n",
				"subjectAltName:      not critical",
				"xmppAddr:            hamlet@shakespeare.lit\n",
				"verdict for hamlet@shakespeare.lit: usable\n",
			},
			notStdout: []string{"forced resource", "bad xmppAddr", "otherName:"},
		},
		{
			name: "ok/no-jid-no-verdict", args: []string{td + "expired.pem", td + "upn-only.pem"}, code: exitOK,
			stdout:    []string{"expired 2151 days ago", "Microsoft UPN"},
			notStdout: []string{"verdict"},
		},
		{
			name: "error/upn-only", args: []string{"--jid", hamlet, td + "upn-only.pem"}, code: exitFailure,
			stdout: []string{
				"subject:             CN=admin",
				"xmppAddr:            none\n",
				`otherName:           1.3.6.1.4.1.311.20.2.3 (Microsoft UPN): UTF8String "admin@corp.example"`,
				"verdict for hamlet@shakespeare.lit: NOT usable: ",
				"[no-xmppaddr]",
			},
			notStdout: []string{"xmppAddr:            admin", "bad xmppAddr"},
			stderr:    []string{"saslcert: 1 of 1 certificates not usable for hamlet@shakespeare.lit"},
		},
		{
			name: "error/upn-only-for-upn-account", args: []string{"--jid", "admin@corp.example", td + "upn-only.pem"}, code: exitFailure,
			stdout: []string{"verdict for admin@corp.example: NOT usable: ", "[no-xmppaddr]"},
		},
		{
			name: "error/xmppaddr-bmpstring", args: []string{"--jid", hamlet, td + "xmppaddr-bmpstring.pem"}, code: exitFailure,
			stdout: []string{
				"xmppAddr:            none\n",
				`bad xmppAddr:        BMPString "hamlet@shakespeare.lit": `,
				"BMPString", "[no-xmppaddr]",
			},
		},
		{
			name: "error/xmppaddr-ia5string", args: []string{"--jid", hamlet, td + "xmppaddr-ia5string.pem"}, code: exitFailure,
			stdout: []string{"xmppAddr:            none\n", `bad xmppAddr:        IA5String "hamlet@shakespeare.lit": `, "[no-xmppaddr]"},
		},
		{
			name: "error/xmppaddr-nul", args: []string{"--jid", hamlet, td + "xmppaddr-nul.pem"}, code: exitFailure,
			stdout:    []string{`bad xmppAddr:        UTF8String "hamlet@shakespeare.lit\x00.evil": `, "NUL", "[no-xmppaddr]"},
			notStdout: []string{"\x00"},
		},
		{
			name: "ok/critical-san-empty-subject", args: []string{"--jid", hamlet, td + "critical-san-empty-subject.pem"}, code: exitOK,
			stdout: []string{
				"subject:             (empty)", "issuer:              (empty)", "subjectAltName:      critical",
				"xmppAddr:            hamlet@shakespeare.lit\n", "verdict for hamlet@shakespeare.lit: usable",
			},
		},
		{
			name: "ok/idn-ulabel", args: []string{"--jid", "alice@bücher.example", td + "idn-ulabel.pem"}, code: exitOK,
			stdout: []string{
				`xmppAddr:            alice@bücher.example ("alice@b\u00fccher.example")`,
				"verdict for alice@bücher.example",
				": usable",
			},
		},
		{
			name: "ok/idn-alabel", args: []string{"--jid", "alice@bücher.example", td + "idn-alabel.pem"}, code: exitOK,
			stdout: []string{`xmppAddr:            alice@bücher.example ("alice@b\u00fccher.example")`, ": usable"},
		},
		{
			name: "ok/idn-both-for-alabel-jid", args: []string{"--jid", "alice@xn--bcher-kva.example", td + "idn-ulabel.pem", td + "idn-alabel.pem"}, code: exitOK,
			stdout: []string{"certificate 1 of 1", ": usable"}, notStdout: []string{"NOT usable"},
		},
		{
			name: "error/idn-for-hamlet", args: []string{"--jid", hamlet, td + "idn-ulabel.pem"}, code: exitFailure,
			stdout: []string{"[wrong-account]"},
		},
		{
			name: "ok/uppercase", args: []string{"--jid", "alice@example.org", td + "uppercase.pem"}, code: exitOK,
			stdout:    []string{"subject:             CN=Alice", "xmppAddr:            alice@example.org\n", "verdict for alice@example.org: usable"},
			notStdout: []string{"Alice@Example.ORG"},
		},
		{
			name: "ok/uppercase-jid-flag", args: []string{"--jid", "ALICE@EXAMPLE.ORG", td + "uppercase.pem"}, code: exitOK,
			stdout: []string{"verdict for alice@example.org: usable"},
		},
		{
			name: "error/lookalike", args: []string{"--jid", hamlet, td + "lookalike.pem"}, code: exitFailure,
			stdout: []string{`("h\u0430mlet@shakespeare.lit")`, "[wrong-account]"},
		},
		{
			name: "error/expired", args: []string{"--jid", hamlet, td + "expired.pem"}, code: exitFailure,
			stdout: []string{
				"not before:          2020-01-01 00:00:00 UTC", "not after:           2021-01-01 00:00:00 UTC",
				"validity:            expired 2151 days ago", "[expired]",
			},
		},
		{
			name: "error/not-yet-valid", args: []string{"--jid", hamlet, td + "not-yet-valid.pem"}, code: exitFailure,
			stdout: []string{"validity:            not yet valid (valid in 26702 days)", "[not-yet-valid]"},
		},
		{
			name: "error/sha1", args: []string{"--jid", hamlet, td + "sha1.pem"}, code: exitFailure,
			stdout: []string{"signature algorithm: SHA1-RSA", "key:                 RSA 2048", "[weak-signature]"},
		},
		{
			name: "error/rsa1024", args: []string{"--jid", hamlet, td + "rsa1024.pem"}, code: exitFailure,
			stdout: []string{"key:                 RSA 1024", "[weak-key]"},
		},
		{
			name: "error/ca", args: []string{"--jid", hamlet, td + "ca.pem"}, code: exitFailure,
			stdout: []string{
				"subject:             CN=Shakespeare Test CA", "CA:                  yes", "key usage:           keyCertSign, cRLSign",
				"extended key usage:  none (any use)", "[ca-certificate]",
			},
		},
		{
			name: "error/serverauth-only", args: []string{"--jid", hamlet, td + "serverauth-only.pem"}, code: exitFailure,
			stdout: []string{"extended key usage:  serverAuth\n", "[no-client-auth]"},
		},
		{
			name: "ok/full-jid", args: []string{"--jid", hamlet, td + "full-jid.pem"}, code: exitOK,
			stdout: []string{
				"xmppAddr:            hamlet@shakespeare.lit/balcony\n",
				"verdict for hamlet@shakespeare.lit: usable\n  forced resource:     balcony\n",
			},
		},
		{
			name: "ok/two-xmppaddrs-hamlet", args: []string{"--jid", hamlet, td + "two-xmppaddrs.pem"}, code: exitOK,
			stdout: []string{
				"xmppAddr:            hamlet@shakespeare.lit\n  xmppAddr:            horatio@shakespeare.lit\n",
				"DNS names:           shakespeare.lit\n", "verdict for hamlet@shakespeare.lit: usable",
			},
		},
		{
			name: "ok/two-xmppaddrs-horatio", args: []string{"--jid", "horatio@shakespeare.lit", td + "two-xmppaddrs.pem"}, code: exitOK,
			stdout: []string{"verdict for horatio@shakespeare.lit: usable"},
		},
		{
			name: "ok/ed25519", args: []string{"--jid", hamlet, td + "ed25519.pem"}, code: exitOK,
			stdout: []string{"key:                 Ed25519\n", "signature algorithm: Ed25519", ": usable"},
		},
		{
			name: "error/chain", args: []string{"--jid", hamlet, td + "chain.pem"}, code: exitFailure,
			stdout: []string{
				td + "chain.pem: certificate 1 of 2\n", td + "chain.pem: certificate 2 of 2\n",
				"issuer:              CN=Elsinore CA", "subject:             CN=Elsinore CA",
				"verdict for hamlet@shakespeare.lit: usable", "verdict for hamlet@shakespeare.lit: NOT usable",
			},
			stderr: []string{"saslcert: 1 of 2 certificates not usable for hamlet@shakespeare.lit"},
		},
		{
			name: "ok/der", args: []string{"--jid", hamlet, td + "hamlet.der"}, code: exitOK,
			stdout: []string{td + "hamlet.der: certificate 1 of 1\n", "key:                 ECDSA P-256", "signature algorithm: ECDSA-SHA256", ": usable"},
		},
		{
			name: "ok/csr-and-cert", args: []string{"--jid", hamlet, td + "csr-and-cert.pem"}, code: exitOK,
			stdout:    []string{td + "csr-and-cert.pem: certificate 1 of 1\n", ": usable"},
			notStdout: []string{"REQUEST"},
			stderr:    []string{"saslcert: " + td + "csr-and-cert.pem: note: skipped PEM block 1 (CERTIFICATE REQUEST): not a certificate"},
		},
		{
			name: "error/csr-only", args: []string{"--jid", hamlet, td + "csr-only.pem"}, code: exitUsage,
			stderr: []string{"skipped PEM block 1 (CERTIFICATE REQUEST)", "saslcert: " + td + "csr-only.pem: no certificate found"},
		},
		{
			name: "error/truncated-der", args: []string{"--jid", hamlet, td + "truncated.der"}, code: exitUsage,
			stderr: []string{"saslcert: " + td + "truncated.der: not PEM, and not one DER certificate: "},
		},
		{
			name: "error/trailing-data-der", args: []string{"--jid", hamlet, td + "trailing-data.der"}, code: exitUsage,
			stderr: []string{"saslcert: " + td + "trailing-data.der: not PEM, and not one DER certificate: ", "trailing"},
		},
		{
			name: "error/garbage", args: []string{td + "garbage.bin"}, code: exitUsage,
			stderr: []string{"saslcert: " + td + "garbage.bin: not PEM, and not one DER certificate: "},
		},
		{
			name: "error/broken-base64", args: []string{td + "broken-base64.pem"}, code: exitUsage,
			stderr: []string{"saslcert: " + td + "broken-base64.pem: 1 of 1 PEM blocks cannot be decoded"},
		},
		{
			name: "error/missing-file", args: []string{td + "no-such-file.pem"}, code: exitUsage,
			stderr: []string{"saslcert: " + td + "no-such-file.pem: no such file or directory\n"},
		},
		{
			name: "error/directory", args: []string{td}, code: exitUsage,
			stderr: []string{"saslcert: " + td + ": is a directory\n"},
		},
		{
			name: "error/unreadable-wins-over-unusable", args: []string{"--jid", hamlet, td + "hamlet.der", td + "expired.pem", td + "garbage.bin"}, code: exitUsage,
			stdout: []string{td + "hamlet.der: certificate 1 of 1", td + "expired.pem: certificate 1 of 1", "[expired]"},
			stderr: []string{td + "garbage.bin: not PEM"},
		},
		{
			name: "error/one-unusable-of-several", args: []string{"--jid", hamlet, td + "hamlet.der", td + "full-jid.pem", td + "sha1.pem"}, code: exitFailure,
			stdout: []string{"[weak-signature]"},
			stderr: []string{"saslcert: 1 of 3 certificates not usable for hamlet@shakespeare.lit\n"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := testNow
			if tc.recipe {
				now = recipeNow(t)
			}
			code, stdout, stderr := runCLI(t, now, nil, append([]string{"cert", "inspect"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			want := slices.Clone(tc.stdout)
			for _, a := range tc.args {
				want = append(want, fingerprints(t, a)...)
			}
			checkOutput(t, "stdout", stdout, want, tc.notStdout)
			checkOutput(t, "stderr", stderr, tc.stderr, nil)
			if tc.code == exitOK && stderr != "" && !strings.Contains(stderr, ": note: ") {
				t.Errorf("stderr on success:\n%s", stderr)
			}
		})
	}
}

// TestFixturesCovered checks that every file in testdata is described in
// testdata/README.md and holds no private key, and that every fixture
// make-fixtures.sh makes is used by TestInspectFixtures.
func TestFixturesCovered(t *testing.T) {
	readme, err := os.ReadFile(td + "README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("inspect_test.go")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(td + "make-fixtures.sh")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(td)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == "README.md" || name == "make-fixtures.sh" || strings.HasPrefix(name, ".") {
			continue
		}
		if !bytes.Contains(readme, []byte("`"+name+"`")) {
			t.Errorf("fixture %s is not described in testdata/README.md", name)
		}
		data, err := os.ReadFile(filepath.Join(td, name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte("PRIVATE KEY")) {
			t.Errorf("fixture %s contains a private key", name)
		}
		if bytes.Contains(script, []byte(strings.TrimSuffix(name, filepath.Ext(name)))) && !bytes.Contains(src, []byte(`td + "`+name+`"`)) {
			t.Errorf("fixture %s (made by make-fixtures.sh) is not used by TestInspectFixtures", name)
		}
	}
}

func TestInspectStdin(t *testing.T) {
	pemData, err := os.ReadFile(td + "full-jid.pem")
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, testNow, bytes.NewReader(pemData), "cert", "inspect", "--jid", hamlet, "-")
	if code != exitOK {
		t.Fatalf("exit status %d, stderr:\n%s", code, stderr)
	}
	checkOutput(t, "stdout", stdout, append(fingerprints(t, td+"full-jid.pem"), "(stdin): certificate 1 of 1\n", "forced resource:     balcony"), nil)

	code, _, stderr = runCLI(t, testNow, nil, "cert", "inspect", "-")
	if code != exitUsage {
		t.Errorf("empty stdin: exit status %d, want %d", code, exitUsage)
	}
	checkOutput(t, "stderr", stderr, []string{"saslcert: (stdin): empty\n"}, nil)
}

// TestInspectNeverPrintsPrivateKeys feeds a PEM file holding a private key
// before a certificate: the key is skipped with a note, and no part of it is
// printed.
func TestInspectNeverPrintsPrivateKeys(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	certPEM, err := os.ReadFile(td + "full-jid.pem")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key-and-cert.pem")
	if err := os.WriteFile(path, append(keyPEM, certPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--jid", hamlet, path}, {"--json", "--jid", hamlet, path}} {
		code, stdout, stderr := runCLI(t, testNow, nil, append([]string{"cert", "inspect"}, args...)...)
		if code != exitOK {
			t.Errorf("%v: exit status %d, stderr:\n%s", args, code, stderr)
		}
		checkOutput(t, "stderr", stderr, []string{"note: skipped PEM block 1 (PRIVATE KEY): not a certificate; its contents are not shown"}, nil)
		for _, line := range strings.Split(string(keyPEM), "\n") {
			if line == "" || strings.HasPrefix(line, "-----") {
				continue
			}
			for i := 0; i+16 <= len(line); i += 16 { // any 16 characters of the key
				checkOutput(t, "stdout", stdout, nil, []string{line[i : i+16]})
				checkOutput(t, "stderr", stderr, nil, []string{line[i : i+16]})
			}
		}
		hexKey := hex.EncodeToString(pkcs8)
		for i := 0; i+32 <= len(hexKey); i += 32 {
			checkOutput(t, "stdout", stdout, nil, []string{hexKey[i : i+32]})
		}
	}
}

func TestInspectJSON(t *testing.T) {
	files := []string{td + "upn-only.pem", td + "full-jid.pem", td + "chain.pem", td + "xmppaddr-bmpstring.pem", td + "expired.pem"}
	code, stdout, stderr := runCLI(t, testNow, nil, append([]string{"cert", "inspect", "--json", "--jid", hamlet}, files...)...)
	if code != exitFailure {
		t.Fatalf("exit status %d, want %d; stderr:\n%s", code, exitFailure, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines of JSON, want 6 (one per certificate):\n%s", len(lines), stdout)
	}
	// The field names are an interface: this list changes only by additions.
	wantKeys := []string{
		"bad_xmpp_addrs", "ca", "count", "dns_names", "ext_key_usage", "file", "fingerprint", "index", "issuer",
		"key_bits", "key_curve", "key_type", "key_usage", "not_after", "not_before", "other_names", "san", "serial",
		"signature_algorithm", "subject", "validity", "validity_days", "verdict", "xmpp_addrs",
	}
	var reports []certReport
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d: %v\n%s", i+1, err, line)
		}
		keys := slices.Sorted(maps.Keys(m))
		for _, k := range wantKeys {
			if _, ok := m[k]; !ok && k != "key_curve" {
				t.Errorf("line %d lacks %q; has %v", i+1, k, keys)
			}
		}
		for _, k := range []string{"xmpp_addrs", "bad_xmpp_addrs", "other_names", "dns_names", "key_usage", "ext_key_usage"} {
			if m[k] == nil {
				t.Errorf("line %d: %s is null, want a list", i+1, k)
			}
		}
		var r certReport
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		reports = append(reports, r)
	}
	var fps []string
	for _, f := range files {
		for _, fp := range fingerprints(t, f) {
			fps = append(fps, strings.TrimPrefix(fp, "fingerprint:         "))
		}
	}
	for i, r := range reports {
		if r.Fingerprint != fps[i] {
			t.Errorf("report %d: fingerprint %s, want %s", i+1, r.Fingerprint, fps[i])
		}
		if r.Verdict == nil || r.Verdict.JID != hamlet {
			t.Errorf("report %d: verdict %+v, want one for %s", i+1, r.Verdict, hamlet)
		}
	}

	upn := reports[0]
	if len(upn.XMPPAddrs) != 0 || len(upn.BadXMPPAddrs) != 0 {
		t.Errorf("UPN taken for an xmppAddr: %+v %+v", upn.XMPPAddrs, upn.BadXMPPAddrs)
	}
	wantUPN := otherName{OID: "1.3.6.1.4.1.311.20.2.3", Name: "Microsoft UPN", Type: "UTF8String", Value: "admin@corp.example",
		DER: hex.EncodeToString(append([]byte{0x0c, 18}, "admin@corp.example"...))}
	if len(upn.OtherNames) != 1 || upn.OtherNames[0] != wantUPN {
		t.Errorf("other_names %+v, want [%+v]", upn.OtherNames, wantUPN)
	}
	if v := upn.Verdict; v.Usable || v.Reason != "no-xmppaddr" || v.Detail == "" {
		t.Errorf("UPN verdict %+v, want not usable, no-xmppaddr", v)
	}

	full := reports[1]
	if v := full.Verdict; !v.Usable || v.Resource != "balcony" || v.Reason != "" {
		t.Errorf("full-jid verdict %+v, want usable with resource balcony", v)
	}
	if !slices.Equal(full.XMPPAddrs, []string{"hamlet@shakespeare.lit/balcony"}) || full.KeyType != "ECDSA" ||
		full.KeyBits != 256 || full.KeyCurve != "P-256" || full.CA || full.Validity != "valid" || full.ValidityDays != 36198 ||
		full.Serial != "1017" || full.File != td+"full-jid.pem" || full.Index != 1 || full.Count != 1 ||
		!slices.Equal(full.ExtKeyUsage, []string{"clientAuth"}) || !slices.Equal(full.KeyUsage, []string{"digitalSignature"}) ||
		!full.NotBefore.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || full.SAN != "not critical" {
		t.Errorf("full-jid report: %+v", full)
	}

	leaf, ca := reports[2], reports[3]
	if leaf.Index != 1 || leaf.Count != 2 || ca.Index != 2 || ca.Count != 2 {
		t.Errorf("chain indexes: %d/%d and %d/%d", leaf.Index, leaf.Count, ca.Index, ca.Count)
	}
	if !leaf.Verdict.Usable || ca.Verdict.Usable || !ca.CA || ca.SAN != "none" {
		t.Errorf("chain: leaf %+v, CA %+v", leaf.Verdict, ca)
	}

	bmp := reports[4]
	if len(bmp.BadXMPPAddrs) != 1 || bmp.BadXMPPAddrs[0].Type != "BMPString" || bmp.BadXMPPAddrs[0].Value != hamlet ||
		bmp.BadXMPPAddrs[0].Reason == "" || len(bmp.XMPPAddrs) != 0 {
		t.Errorf("bmpstring: bad %+v, xmppAddrs %v", bmp.BadXMPPAddrs, bmp.XMPPAddrs)
	}

	expired := reports[5]
	if expired.Validity != "expired" || expired.ValidityDays != 2151 || expired.Verdict.Reason != "expired" {
		t.Errorf("expired: %s %d %+v", expired.Validity, expired.ValidityDays, expired.Verdict)
	}

	// Without --jid there is no verdict key at all.
	code, stdout, _ = runCLI(t, testNow, nil, "cert", "inspect", "--json", td+"hamlet.der")
	if code != exitOK || strings.Contains(stdout, "verdict") {
		t.Errorf("without --jid: exit status %d, output %s", code, stdout)
	}
}
