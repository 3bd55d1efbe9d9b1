{{/*
Names and labels shared by every template.
*/}}

{{- define "releaseguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's name for its namespaced objects (Deployment, ServiceAccount, Service,
the Lease): the release name when it already says "releaseguard", else
"<release>-releaseguard". 63 characters at most, as it is also a label value.
*/}}
{{- define "releaseguard.fullname" -}}
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

{{/*
The name of objects that more than one release may want at once: ClusterRoles and
ClusterRoleBindings (one cluster), and the Roles a release puts into the namespaces it
watches (two releases may watch the same one). "<release namespace>:<fullname>": a
release name is unique only within its namespace, and ":" cannot occur in either part,
so no two releases get the same name ("a-b" + "c" and "a" + "b-c" would with "-").
RBAC names may be up to 253 characters and contain ":".
*/}}
{{- define "releaseguard.qualifiedName" -}}
{{- printf "%s:%s" .Release.Namespace (include "releaseguard.fullname" .) }}
{{- end }}

{{/*
qualifiedName for cluster-scoped kinds whose names must be DNS subdomains (no ":"), such
as the ValidatingAdmissionPolicy and its binding: "<release namespace>.<fullname>". Both
parts are DNS labels, which cannot contain ".", so it is as unique as qualifiedName.
*/}}
{{- define "releaseguard.qualifiedSubdomain" -}}
{{- printf "%s.%s" .Release.Namespace (include "releaseguard.fullname" .) }}
{{- end }}

{{- define "releaseguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: the same as chart 0.1.0 selected on, because a Deployment's selector
is immutable.
*/}}
{{- define "releaseguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "releaseguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "releaseguard.labels" -}}
helm.sh/chart: {{ include "releaseguard.chart" . }}
{{ include "releaseguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: releaseguard
{{- end }}

{{/*
The Lease the replicas elect their one writer with (in the release namespace).
*/}}
{{- define "releaseguard.leaseName" -}}
{{- include "releaseguard.fullname" . }}
{{- end }}

{{/*
What the operator does in a namespace it watches, and nothing more: it reads the guards
and their targets, writes guard status and Events, and patches only the objects a step
names. The ClusterRole (all namespaces) and the per-namespace Roles (watchNamespaces)
both render this one list.
*/}}
{{- define "releaseguard.namespacedRules" -}}
- apiGroups: [releaseguard.io]
  resources: [releaseguards]
  verbs: [get, list, watch, patch, update]
- apiGroups: [releaseguard.io]
  resources: [releaseguards/status]
  verbs: [get, patch, update]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, update, patch]
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, update, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, update, patch]
{{- if .Values.argocd.enabled }}
- apiGroups: [argoproj.io]
  resources: [applications]
  verbs: [get, update, patch]
{{- end }}
{{- end }}

{{/*
Cluster-scoped reads Kopf makes when it serves every namespace: it watches
CustomResourceDefinitions to notice the ReleaseGuard CRD appearing or changing, and
Namespaces (kopf/_core/reactor/observation.py). With watchNamespaces set the operator
turns that scanning off (settings.scanning.disabled), so it needs no ClusterRole at all.
*/}}
{{- define "releaseguard.clusterRules" -}}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end }}
