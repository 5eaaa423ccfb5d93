package modclientcerts_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/saslcert/saslcert/modclientcerts"
)

// FuzzParse: Parse never panics, returns entries or a *SyntaxError /
// ErrTooLarge, and every entry has either a certificate or an *EntryError.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(fixtureDir, "*", "client_certs", "*.dat"))
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{"return {};", `return {["a"] = {["x509cert"] = "AA=="}}`, `return {[1]=2}`, "return {{{", `return {["\0991"]={}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := modclientcerts.Parse(data)
		if err != nil {
			var se *modclientcerts.SyntaxError
			if !errors.As(err, &se) && !errors.Is(err, modclientcerts.ErrTooLarge) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if es != nil {
				t.Fatal("entries with an error")
			}
			return
		}
		for _, e := range es {
			var ee *modclientcerts.EntryError
			if (e.Err == nil) == (e.DER == nil) || e.Err != nil && !errors.As(e.Err, &ee) {
				t.Fatalf("entry %q: DER %d bytes, Err %v", e.Name, len(e.DER), e.Err)
			}
		}
	})
}
