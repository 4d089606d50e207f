// Package auth establishes who a caller is. Bearer tokens (service-account
// tokens, static tokens, OIDC ID tokens the apiserver accepts) are checked
// with a TokenReview against the identity cluster and cached briefly, both
// positive and negative answers, in a bounded cache. There is no fallback to
// clustergraph's own identity: a request without a valid token reads
// nothing.
package auth
