package sasl

import (
	"github.com/xdg-go/stringprep"
)

// The RFC 3920 stringprep profiles (RFC 3454) that XMPP servers such as
// Prosody still apply to JIDs (Prosody's util.jid.prep: nameprep, nodeprep,
// resourceprep), assembled from the RFC 3454 tables. Each one prohibits
// unassigned code points (table A.1, Unicode 3.2), which is stricter than
// Prosody's default (it lets them through unchanged): a code point assigned
// after Unicode 3.2 may normalise differently under this package's newer
// Unicode tables than under the server's Unicode 3.2 ones, so such JIDs are
// refused rather than guessed at.

// nodeprepProhibitedASCII is what RFC 3920 Appendix A.5 adds to nodeprep's
// prohibited output: " & ' / : < > @.
var nodeprepProhibitedASCII = stringprep.Set{
	{0x22, 0x22}, {0x26, 0x27}, {0x2F, 0x2F}, {0x3A, 0x3A}, {0x3C, 0x3C}, {0x3E, 0x3E}, {0x40, 0x40},
}

// corrigendum4 are the five CJK compatibility ideographs whose
// decompositions Unicode Corrigendum #4 changed after Unicode 3.2: the
// server's NFKC (Unicode 3.2) and this package's differ for them.
var corrigendum4 = stringprep.Set{
	{0x2F868, 0x2F868}, {0x2F874, 0x2F874}, {0x2F91F, 0x2F91F}, {0x2F95F, 0x2F95F}, {0x2F9BF, 0x2F9BF},
}

// tableB1Missing is the one code point of RFC 3454 table B.1 ("commonly
// mapped to nothing") that stringprep.TableB1 (v1.0.4) lacks: U+1806
// MONGOLIAN TODO SOFT HYPHEN. Found by TestStringprepMatchesProsody.
var tableB1Missing = stringprep.Mapping{0x1806: {}}

// nodeprep is RFC 3920 Appendix A: B.1 and B.2 mapping, NFKC, prohibited
// C.1.1, C.1.2, C.2.1, C.2.2, C.3-C.9 and " & ' / : < > @, bidi, no
// unassigned code points.
var nodeprep = stringprep.Profile{
	Mappings:  []stringprep.Mapping{tableB1Missing, stringprep.TableB1, stringprep.TableB2},
	Normalize: true,
	Prohibits: []stringprep.Set{
		stringprep.TableA1, corrigendum4,
		stringprep.TableC1_1, stringprep.TableC1_2, stringprep.TableC2_1, stringprep.TableC2_2,
		stringprep.TableC3, stringprep.TableC4, stringprep.TableC5, stringprep.TableC6,
		stringprep.TableC7, stringprep.TableC8, stringprep.TableC9, nodeprepProhibitedASCII,
	},
	CheckBiDi: true,
}

// nameprep is RFC 3491: B.1 and B.2 mapping, NFKC, prohibited C.1.2, C.2.2,
// C.3-C.9, bidi, no unassigned code points.
var nameprep = stringprep.Profile{
	Mappings:  []stringprep.Mapping{tableB1Missing, stringprep.TableB1, stringprep.TableB2},
	Normalize: true,
	Prohibits: []stringprep.Set{
		stringprep.TableA1, corrigendum4,
		stringprep.TableC1_2, stringprep.TableC2_2,
		stringprep.TableC3, stringprep.TableC4, stringprep.TableC5, stringprep.TableC6,
		stringprep.TableC7, stringprep.TableC8, stringprep.TableC9,
	},
	CheckBiDi: true,
}

// resourceprep is RFC 3920 Appendix B: B.1 mapping (no case folding), NFKC,
// prohibited C.1.2, C.2.1, C.2.2, C.3-C.9, bidi, no unassigned code points.
var resourceprep = stringprep.Profile{
	Mappings:  []stringprep.Mapping{tableB1Missing, stringprep.TableB1},
	Normalize: true,
	Prohibits: []stringprep.Set{
		stringprep.TableA1, corrigendum4,
		stringprep.TableC1_2, stringprep.TableC2_1, stringprep.TableC2_2,
		stringprep.TableC3, stringprep.TableC4, stringprep.TableC5, stringprep.TableC6,
		stringprep.TableC7, stringprep.TableC8, stringprep.TableC9,
	},
	CheckBiDi: true,
}

// prep applies profile p to s. Unlike stringprep.Profile.Prepare alone it
// also refuses unassigned code points (table A.1) and the Corrigendum #4
// ideographs in the input: a code point unassigned in Unicode 3.2 but
// assigned now could be mapped away by today's NFKC before the output check.
func prep(p stringprep.Profile, s string) (string, error) {
	for _, r := range s {
		if stringprep.TableA1.Contains(r) || corrigendum4.Contains(r) {
			return "", stringprep.Error{Msg: "code point unassigned in Unicode 3.2 or normalised differently since", Rune: r}
		}
	}
	return p.Prepare(s)
}
