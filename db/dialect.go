package db

import (
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// upsert completes an INSERT (… VALUES or … SELECT) so a row whose unique
// key exists gets cols replaced by the new values, in this dialect's words.
func (s *Store) upsert(key, cols []string) string {
	set := make([]string, len(cols))
	for i, c := range cols {
		if s.dialect == MySQL {
			set[i] = fmt.Sprintf("%s = VALUES(%s)", c, c)
		} else {
			set[i] = fmt.Sprintf("%s = excluded.%s", c, c)
		}
	}
	if s.dialect == MySQL {
		return " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	}
	return fmt.Sprintf(" ON CONFLICT (%s) DO UPDATE SET %s", strings.Join(key, ", "), strings.Join(set, ", "))
}

// deleteBatch deletes at most n rows of table matching where (one batch of
// a retention sweep) and says how many went.
func (s *Store) deleteBatch(tx *gorm.DB, table, where string, n int, args ...any) (int64, error) {
	var q string
	if s.dialect == MySQL {
		q = fmt.Sprintf("DELETE FROM %s WHERE %s LIMIT %d", table, where, n)
	} else {
		// SQLite builds without DELETE … LIMIT by default.
		q = fmt.Sprintf("DELETE FROM %s WHERE id IN (SELECT id FROM %s WHERE %s LIMIT %d)", table, table, where, n)
	}
	res := tx.Exec(q, args...)
	return res.RowsAffected, res.Error
}
