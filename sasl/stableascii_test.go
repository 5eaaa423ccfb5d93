package sasl

import (
	"testing"

	"github.com/xdg-go/stringprep"
)

// TestStableASCIIMatchesProfiles: the fast path agrees with the full
// stringprep profiles on every ASCII value it lets through.
func TestStableASCIIMatchesProfiles(t *testing.T) {
	profiles := map[string]stringprep.Profile{"localpart": nodeprep, "domainpart": nameprep, "resourcepart": resourceprep}
	for part, p := range profiles {
		for c := 0; c < 0x80; c++ {
			v := "ab" + string(rune(c)) + "9"
			if !stableASCII(part, v) {
				continue
			}
			out, err := prep(p, v)
			if err != nil || out != v {
				t.Errorf("%s %q: fast path says unchanged, profile gives %q, %v", part, v, out, err)
			}
		}
	}
}
