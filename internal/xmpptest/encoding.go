package xmpptest

import (
	"encoding/xml"
	"reflect"
	"testing"
)

// EncodingCase is one row of an encoding table: Value (a pointer) marshals to
// XML, and XML unmarshals into a new value of Value's type equal to Value.
type EncodingCase struct {
	Name        string
	Value       any // a pointer
	XML         string
	NoMarshal   bool // XML is not what Value marshals to (e.g. other white space)
	NoUnmarshal bool // XML does not unmarshal back to Value (e.g. lossy)
}

// RunEncoding runs each case as a subtest.
func RunEncoding(t *testing.T, cases []EncodingCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			if !tc.NoMarshal {
				b, err := xml.Marshal(tc.Value)
				if err != nil {
					t.Fatalf("marshal: %v", err)
				}
				if got := string(b); got != tc.XML {
					t.Errorf("marshal:\n got %s\nwant %s", got, tc.XML)
				}
			}
			if !tc.NoUnmarshal {
				v := reflect.New(reflect.TypeOf(tc.Value).Elem()).Interface()
				if err := xml.Unmarshal([]byte(tc.XML), v); err != nil {
					t.Fatalf("unmarshal: %v", err)
				}
				if !reflect.DeepEqual(v, tc.Value) {
					t.Errorf("unmarshal:\n got %+v\nwant %+v", v, tc.Value)
				}
			}
		})
	}
}
