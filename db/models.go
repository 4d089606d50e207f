package db

// Storage models. They are not API types: resolvers convert them (see
// graph/model). Indexes are created by name in migrate.go, not by tags, so
// each migration says exactly what it changes.

// MeteringColumns are the measured columns samples and rollups share (a
// storage type, exported only because gorm reads embedded fields that are); in a
// rollup each is the sum over the period's samples.
type MeteringColumns struct {
	CPUMillis    int64 `gorm:"not null"`
	MemoryBytes  int64 `gorm:"not null"`
	StorageBytes int64 `gorm:"not null"`
	// GPUMillis counts extended GPU resources requested, times 1000.
	GPUMillis  int64 `gorm:"not null"`
	PublicIPs  int64 `gorm:"not null"`
	PrivateIPs int64 `gorm:"not null"`
	TrafficIn  int64 `gorm:"not null"`
	TrafficOut int64 `gorm:"not null"`
	// FromRequests is 1 when CPU and memory are pod requests because the
	// cluster served no metrics (in a rollup: how many such samples).
	FromRequests int64 `gorm:"not null"`
}

// meteringSample is one namespace's usage at one collection tick.
type meteringSample struct {
	ID        uint64 `gorm:"primaryKey;autoIncrement"`
	Cluster   string `gorm:"size:253;not null"`
	Namespace string `gorm:"size:63;not null"`
	// Time is the tick, Unix seconds, truncated to the collection interval.
	Time            int64 `gorm:"not null"`
	MeteringColumns `gorm:"embedded"`
}

func (meteringSample) TableName() string { return "metering_samples" }

// meteringRollup sums a namespace's samples over one hour, day, month or
// year (one table each). Sums, not averages, so a longer period is the exact
// sum of its shorter ones; the API divides by Samples.
type meteringRollup struct {
	ID              uint64 `gorm:"primaryKey;autoIncrement"`
	Cluster         string `gorm:"size:253;not null"`
	Namespace       string `gorm:"size:63;not null"`
	PeriodStart     int64  `gorm:"not null"`
	Samples         int64  `gorm:"not null"`
	MeteringColumns `gorm:"embedded"`
}

// usageSample is one node's or pod's usage at one tick, kept for a short
// window so consoles can plot recent history.
type usageSample struct {
	ID          uint64 `gorm:"primaryKey;autoIncrement"`
	Cluster     string `gorm:"size:253;not null"`
	Kind        string `gorm:"size:8;not null"` // node or pod
	Namespace   string `gorm:"size:63;not null"`
	Name        string `gorm:"size:253;not null"`
	Time        int64  `gorm:"not null"`
	CPUMillis   int64  `gorm:"not null"`
	MemoryBytes int64  `gorm:"not null"`
}

func (usageSample) TableName() string { return "usage_samples" }

// alertRow is one alert: an Alertmanager alert (fingerprint + startsAt), a
// hypercloud-style notification, or one created through the API.
type alertRow struct {
	ID          uint64 `gorm:"primaryKey;autoIncrement"`
	Fingerprint string `gorm:"size:64;not null"`
	StartsAt    int64  `gorm:"not null"`
	// EndsAt is 0 while the alert fires.
	EndsAt    int64  `gorm:"not null"`
	Status    string `gorm:"size:16;not null"`
	Cluster   string `gorm:"size:253;not null"`
	Namespace string `gorm:"size:63;not null"`
	// Name is the object the alert is about; ObjectKind says what it is
	// (Pod, Deployment, Node, Namespace, ...), empty when unknown.
	Name         string `gorm:"size:253;not null"`
	ObjectKind   string `gorm:"size:63;not null"`
	AlertName    string `gorm:"size:253;not null"`
	Severity     string `gorm:"size:32;not null"`
	Source       string `gorm:"size:253;not null"`
	Module       string `gorm:"size:253;not null"`
	Type         string `gorm:"size:64;not null"`
	Message      string `gorm:"type:text"`
	Labels       string `gorm:"type:text"` // JSON object
	Annotations  string `gorm:"type:text"` // JSON object
	GeneratorURL string `gorm:"size:1024;not null"`
	ReceivedAt   int64  `gorm:"not null"`
	UpdatedAt    int64  `gorm:"not null;autoUpdateTime:false"`
}

func (alertRow) TableName() string { return "alerts" }

// alertLabel is one label of an alert, so label selectors run in SQL.
type alertLabel struct {
	ID      uint64 `gorm:"primaryKey;autoIncrement"`
	AlertID uint64 `gorm:"not null"`
	Key     string `gorm:"column:label_key;size:255;not null"`
	Value   string `gorm:"column:label_value;size:255;not null"`
}

func (alertLabel) TableName() string { return "alert_labels" }

// alertChange is appended in the same transaction as every alert insert or
// update; each replica polls it to tell its subscribers (the id orders them).
type alertChange struct {
	ID      uint64 `gorm:"primaryKey;autoIncrement"`
	AlertID uint64 `gorm:"not null"`
	At      int64  `gorm:"not null"`
}

func (alertChange) TableName() string { return "alert_changes" }

// eventRow is an archived Kubernetes Event, deduplicated by cluster and uid.
type eventRow struct {
	ID                uint64 `gorm:"primaryKey;autoIncrement"`
	Cluster           string `gorm:"size:253;not null"`
	UID               string `gorm:"column:uid;size:36;not null"`
	Namespace         string `gorm:"size:63;not null"`
	Name              string `gorm:"size:253;not null"`
	InvolvedKind      string `gorm:"size:63;not null"`
	InvolvedNamespace string `gorm:"size:63;not null"`
	InvolvedName      string `gorm:"size:253;not null"`
	Type              string `gorm:"size:16;not null"`
	Reason            string `gorm:"size:128;not null"`
	Source            string `gorm:"size:253;not null"`
	Message           string `gorm:"type:text"`
	Count             int64  `gorm:"not null"`
	FirstSeen         int64  `gorm:"not null"`
	LastSeen          int64  `gorm:"not null"`
	// Raw is the Event as JSON (managedFields stripped), so an archived
	// event is served exactly like a live one.
	Raw string `gorm:"type:text"`
}

func (eventRow) TableName() string { return "events" }
