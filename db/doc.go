// Package db keeps what must outlive the clusters' own memory: metering
// samples and their hour/day/month/year rollups, recent node and pod usage,
// alerts, and archived Kubernetes Events.
//
// One DSN picks the database: MySQL or MariaDB through gorm.io/driver/mysql
// for production ("mysql://user:pass@tcp(host:3306)/clustergraph"), or an
// embedded SQLite file, the zero-setup default ("sqlite:///path/file.db").
// SQLite is github.com/ncruces/go-sqlite3 behind its gorm dialector
// gormlite: SQLite compiled to Go (wasm2go), so static CGO_ENABLED=0 builds
// carry a current engine. Files written by the engine before it
// (glebarez/sqlite on modernc.org/sqlite) open as they are (compat_test.go).
// Open applies the versioned migrations (migrate.go) before returning.
//
// Times are stored as Unix seconds in BIGINT columns: the same comparison
// semantics in both dialects, and no driver time-zone surprises.
//
// Errors leaving this package wrap ErrUnavailable (the database cannot be
// reached or failed), errkind.BadInput or errkind.NotFound, so the API edge can map
// them to extensions.code without knowing SQL.
package db
