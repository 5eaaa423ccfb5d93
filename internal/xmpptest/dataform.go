package xmpptest

import (
	"fmt"
	"strings"
)

// SubmitForm is a submitted XEP-0004 form of FORM_TYPE formType whose fields
// are given as raw XML (FieldXML, or anything a client might send).
func SubmitForm(formType string, fields ...string) string {
	return "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" + formType + "</value></field>" +
		strings.Join(fields, "") + "</x>"
}

// FieldXML is <field var=v> with one <value/> per value.
func FieldXML(v string, values ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<field var='%s'>", v)
	for _, x := range values {
		fmt.Fprintf(&b, "<value>%s</value>", x)
	}
	b.WriteString("</field>")
	return b.String()
}
