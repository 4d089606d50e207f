package model

import "github.com/clustergraph/clustergraph/errkind"

// FromError is the API form of one part's failure. Internal errors keep
// their details out, as the error presenter does.
func FromError(err error) *MutationError {
	code := errkind.Code(err)
	msg := err.Error()
	if code == errkind.CodeInternal {
		msg = "internal error"
	}
	return &MutationError{Message: msg, Code: code}
}
