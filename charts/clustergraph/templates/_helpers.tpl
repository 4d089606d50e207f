{{/* Names, labels and the checks every template shares. */}}

{{- define "clustergraph.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name: the release name, with the chart's name appended
unless the release name already contains it (helm install clustergraph ...
gives "clustergraph", not "clustergraph-clustergraph").
*/}}
{{- define "clustergraph.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "clustergraph.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clustergraph.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "clustergraph.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "clustergraph.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "clustergraph.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "clustergraph.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: with serviceAccount.create=false, name the existing service account the server runs as" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "clustergraph.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The storage the server uses: "external" (a DSN from a Secret), "sqlite" or "none". */}}
{{- define "clustergraph.storage" -}}
{{- if not .Values.database.enabled }}none
{{- else if .Values.database.existingSecret }}external
{{- else }}sqlite
{{- end }}
{{- end }}

{{/*
clustergraph.validate fails the render for values that cannot work, each
message naming the values. The schema checks each value on its own; these
are the combinations. templates/validate.yaml includes it, so `helm
template` and `helm install` stop before anything is applied.
*/}}
{{- define "clustergraph.validate" -}}
{{- $v := .Values }}
{{- if and $v.shell.namespace (not $v.shell.proxyURL) }}
{{- fail (printf "shell.namespace is set (%q) but shell.proxyURL is not: cluster shells need both, the namespace for their pods and the URL at which those pods reach this server (e.g. http://%s.%s.svc:%v for this cluster)" $v.shell.namespace (include "clustergraph.fullname" .) .Release.Namespace $v.service.port) }}
{{- end }}
{{- if and $v.shell.proxyURL (not $v.shell.namespace) }}
{{- fail "shell.proxyURL is set but shell.namespace is not: cluster shells need both (set shell.namespace to the namespace for shell pods, or unset shell.proxyURL)" }}
{{- end }}
{{- if and $v.shell.createNamespace (not $v.shell.namespace) }}
{{- fail "shell.createNamespace is true but shell.namespace is empty: name the namespace to create" }}
{{- end }}
{{- $storage := include "clustergraph.storage" . }}
{{- if and $v.persistence.enabled (eq $storage "external") }}
{{- fail "persistence.enabled and database.existingSecret are both set: with an external database the data dir holds only the metering outbox of a database outage, which the default emptyDir keeps across container restarts; turn persistence.enabled off (or unset database.existingSecret to keep SQLite on the volume)" }}
{{- end }}
{{- if and $v.persistence.enabled (eq $storage "none") }}
{{- fail "persistence.enabled is true but database.enabled is false: with --database=none nothing is stored in the data dir; turn persistence.enabled off" }}
{{- end }}
{{- if and (not $v.database.enabled) $v.database.existingSecret }}
{{- fail "database.existingSecret is set but database.enabled is false: unset one of them" }}
{{- end }}
{{- if and (gt (int $v.replicas) 1) (eq $storage "sqlite") }}
{{- fail (printf "replicas is %v but the database is SQLite in the pod's data dir: each replica would keep its own alerts, metering and event archive and answer differently depending on which one a request reaches (and a ReadWriteOnce volume cannot be shared). Use a shared MySQL/MariaDB (database.existingSecret), or database.enabled=false, or replicas=1" $v.replicas) }}
{{- end }}
{{- if and $v.persistence.existingClaim (not $v.persistence.enabled) }}
{{- fail "persistence.existingClaim is set but persistence.enabled is false: set persistence.enabled=true to mount it" }}
{{- end }}
{{- if and $v.kubeconfig.secretName (not $v.kubeconfig.keys) }}
{{- fail "kubeconfig.secretName is set but kubeconfig.keys is empty: name the Secret's keys that hold kubeconfig files" }}
{{- end }}
{{- range $i, $rule := $v.rbac.extraReadRules }}
{{- range $rule.resources }}
{{- if or (eq . "*") (eq . "secrets") (hasPrefix "secrets/" .) (hasPrefix "*/" .) }}
{{- fail (printf "rbac.extraReadRules[%d] names %q: the server would hold get, list and watch on Secrets, values included; Secrets are cached as metadata with cacheSecrets=true, which needs no rule here" $i .) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (not $v.inCluster) (not $v.kubeconfig.secretName) }}
{{- fail "inCluster is false and kubeconfig.secretName is empty: the server would serve no cluster; set one of them" }}
{{- end }}
{{- end }}

{{/* The kubeconfig files of kubeconfig.secretName, as --kubeconfig takes them (":"-separated). */}}
{{- define "clustergraph.kubeconfigPaths" -}}
{{- $paths := list }}
{{- range .Values.kubeconfig.keys }}
{{- $paths = append $paths (printf "/etc/clustergraph/kubeconfig/%s" .) }}
{{- end }}
{{- join ":" $paths }}
{{- end }}

{{/* The namespace of the leader Lease (and of the Role that lets the server use it). */}}
{{- define "clustergraph.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.leaseNamespace }}
{{- end }}

{{/*
Whether this cluster is the identity cluster: the server then reviews
callers' tokens here and holds its Lease here. Anything else happens in
the cluster --identity-cluster names, with the kubeconfig's credentials.
*/}}
{{- define "clustergraph.identityHere" -}}
{{- if and .Values.inCluster (or (not .Values.identityCluster) (eq .Values.identityCluster "in-cluster")) }}true{{ end }}
{{- end }}
