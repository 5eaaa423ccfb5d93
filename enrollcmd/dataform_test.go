package enrollcmd

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/saslcert/saslcert/internal/xmpptest"
)

// rawForm is a submitted form whose fields are given as raw XML.
func rawForm(fields ...string) string { return xmpptest.SubmitForm(FormType, fields...) }

// fieldXML is <field var=v> with one <value/> per value.
var fieldXML = xmpptest.FieldXML

// TestSubmittedFormChecked: nothing in a submitted enrollment form may be
// read in a way the client did not mean (issue 16.9): XEP-0004 booleans
// are exactly 0, 1, false or true; a field appears once; a single-valued
// field has one value; values are <value/> of jabber:x:data.
func TestSubmittedFormChecked(t *testing.T) {
	for _, tc := range []struct {
		name    string
		form    string
		field   string // FormError.Field; "-" for no error
		problem string
		ncm     bool // NoCertManagement read, when accepted
	}{
		{"bool/1", rawForm(fieldXML(FieldNoCertManagement, "1")), "-", "", true},
		{"bool/true", rawForm(fieldXML(FieldNoCertManagement, "true")), "-", "", true},
		{"bool/0", rawForm(fieldXML(FieldNoCertManagement, "0")), "-", "", false},
		{"bool/false", rawForm(fieldXML(FieldNoCertManagement, "false")), "-", "", false},
		{"bool/absent", rawForm(), "-", "", false},
		{"bool/no-value", rawForm(fieldXML(FieldNoCertManagement)), "-", "", false},
		{"bool/TRUE", rawForm(fieldXML(FieldNoCertManagement, "TRUE")), FieldNoCertManagement, "not a boolean", false},
		{"bool/yes", rawForm(fieldXML(FieldNoCertManagement, "yes")), FieldNoCertManagement, "not a boolean", false},
		{"bool/empty-value", rawForm(fieldXML(FieldNoCertManagement, "")), FieldNoCertManagement, "not a boolean", false},
		{"bool/padded", rawForm(fieldXML(FieldNoCertManagement, " 1")), FieldNoCertManagement, "not a boolean", false},
		{"bool/two-values", rawForm(fieldXML(FieldNoCertManagement, "0", "1")), FieldNoCertManagement, "2 values", false},
		{"bool/twice", rawForm(fieldXML(FieldNoCertManagement, "0"), fieldXML(FieldNoCertManagement, "1")), FieldNoCertManagement, "more than once", false},
		{"bool/value-in-another-namespace", rawForm("<field var='no-cert-management'><value xmlns='urn:x-other'>1</value></field>"),
			FieldNoCertManagement, "<value xmlns='urn:x-other'/>", false},
		{"csr/twice", rawForm(fieldXML(FieldCSR, "a"), fieldXML(FieldCSR, "b")), FieldCSR, "more than once", false},
		{"csr/many-lines", rawForm(fieldXML(FieldCSR, "a", "b", "c")), "-", "", false},
		{"name/two-values", rawForm(fieldXML(FieldName, "a", "b")), FieldName, "2 values", false},
		{"self-signed/twice", rawForm(fieldXML(FieldSelfSigned, "a"), fieldXML(FieldSelfSigned, "a")), FieldSelfSigned, "more than once", false},
		{"form-type/other", "<x xmlns='jabber:x:data' type='submit'>" + fieldXML("FORM_TYPE", "urn:x-other") + "</x>", "FORM_TYPE", "is not", false},
		{"form-type/twice", rawForm(fieldXML("FORM_TYPE", FormType)), "FORM_TYPE", "more than once", false},
		{"field-without-var", rawForm("<field><value>1</value></field>"), "", "without var", false},
		{"field-in-another-namespace", rawForm("<field xmlns='urn:x-other' var='no-cert-management'><value>1</value></field>"), "", "urn:x-other", false},
		{"unknown-field-ignored", rawForm(fieldXML("x-extra", "a", "b")), "-", "", false},
		{"unknown-field-twice", rawForm(fieldXML("x-extra", "a"), fieldXML("x-extra", "b")), "x-extra", "more than once", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f submittedForm
			if err := decodeString(tc.form, &f); err != nil {
				t.Fatal(err)
			}
			vals, err := f.checked(enrollFields)
			if tc.field == "-" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if got, _ := parseBoolean(first(vals[FieldNoCertManagement])); got != tc.ncm {
					t.Fatalf("no-cert-management read as %v", got)
				}
				return
			}
			var fe *FormError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a *FormError", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Error(), tc.problem) {
				t.Fatalf("FormError{%q, %q}, want field %q and %q", fe.Field, fe.Problem, tc.field, tc.problem)
			}
			if tc.field != "" && !strings.Contains(fe.Error(), `"`+tc.field+`"`) {
				t.Fatalf("the text %q does not name the field", fe.Error())
			}
		})
	}
}

// decodeString unmarshals the XML s into v.
func decodeString(s string, v any) error {
	return xml.NewDecoder(strings.NewReader(s)).Decode(v)
}
