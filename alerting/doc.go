// Package alerting receives alerts (Alertmanager's webhook, the hypercloud
// list form, the createAlert mutation), stores them through db, and streams
// changes to subscribers on every replica: each replica polls the shared
// change log, so an alert received by one reaches subscribers of all.
package alerting
