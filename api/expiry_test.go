package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clustergraph/clustergraph/api"
	"github.com/clustergraph/clustergraph/internal/testenv"
)

// TestExpiringToken: a service-account token that really expires (signed
// with the cluster's own key, since TokenRequest will not issue one under
// 10 minutes) works until its expiry. Then a websocket opened with it
// closes within seconds, HTTP is UNAUTHENTICATED (although accepted tokens
// are otherwise remembered for 30 s) and a new socket is refused, even
// while the apiserver, which allows a minute of clock skew, would still
// accept it.
func TestExpiringToken(t *testing.T) {
	cs := testenv.Clusters(t)
	c := cs[0]
	const lifetime = 3 * time.Second
	u := makeUser(t, cs[:1], "cg-expiring", func(c testenv.Cluster, user string) {
		roleBinding(t, c, "shop", "cg-expiring", "ClusterRole", "view", user)
	})
	sa, err := c.Client.CoreV1().ServiceAccounts(accessNS).Get(ctx, u.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	issued := time.Now()
	token := testenv.ShortLivedToken(t, c, accessNS, u.name, string(sa.UID), lifetime)
	expires := time.Unix(issued.Add(lifetime).Unix(), 0)
	review := func() bool {
		tr, err := c.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Authenticated && tr.Status.User.Username == u.user
	}
	if !review() {
		t.Fatal("the apiserver does not accept the short-lived token")
	}
	s := startServerWith(t, serverOpts{kubeconfigs: []string{c.Kubeconfig}, waitReady: true, auth: true}, func(cfg *api.Config) {
		cfg.TokenRecheck = time.Second
	})
	var out struct{ Viewer struct{ Username string } }
	s.as(token).query(t, `{ viewer { username } }`, nil, &out)
	if out.Viewer.Username != u.user {
		t.Fatalf("viewer = %q", out.Viewer.Username)
	}
	st := subscribeWS(t, s, token, watchQuery, map[string]any{"ns": "shop"})
	st.until("SYNCED", "")

	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if _, _, err := st.c.Read(rctx); err != nil {
			if rctx.Err() != nil {
				t.Fatal("the socket outlived its expired token by 30 s")
			}
			break
		}
	}
	closed := time.Since(expires)
	t.Logf("the socket closed %s after the token's expiry", closed.Round(time.Millisecond))
	if closed < 0 || closed > 4*time.Second {
		t.Errorf("the socket closed %s after the token's expiry, want within the recheck interval after it", closed.Round(time.Millisecond))
	}
	if r := s.as(token).do(t, `{ viewer { username } }`, nil); r.Status != http.StatusUnauthorized || len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "UNAUTHENTICATED" {
		t.Errorf("after expiry: %d %+v, want 401 UNAUTHENTICATED", r.Status, r.Errors)
	}
	ws, err := wsDial(t, s, "")
	if err != nil {
		t.Fatal(err)
	}
	wsSend(t, ws, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}})
	if m, err := wsRead(ws); err == nil && m.Type == "connection_ack" {
		t.Error("a socket was opened with the expired token")
	}
	t.Logf("the apiserver itself still accepts the token: %v", review())
}
