{{/* The chart name, cut to 63 characters (a label value). */}}
{{- define "hadis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* RELEASE-hadis, or RELEASE when it already says hadis; fullnameOverride wins. */}}
{{- define "hadis.fullname" -}}
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

{{/* Cluster-scoped names carry the release namespace: two releases of one name must not clash. */}}
{{- define "hadis.clusterName" -}}
{{- printf "%s-%s" (include "hadis.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hadis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hadis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hadis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "hadis.labels" -}}
helm.sh/chart: {{ include "hadis.chart" . }}
{{ include "hadis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hadis
{{- end }}

{{- define "hadis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hadis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: the existing ServiceAccount to run as (serviceAccount.create is false)" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Value combinations the schema cannot express; included by the Deployment, so always checked. */}}
{{- define "hadis.validate" -}}
{{- if and .Values.allNamespaces .Values.watchNamespace }}
{{- fail "allNamespaces: true serves every namespace; leave watchNamespace empty" }}
{{- end }}
{{- end }}

{{/* The namespace the operator serves when it is namespaced. */}}
{{- define "hadis.watchNamespace" -}}
{{- default .Release.Namespace .Values.watchNamespace }}
{{- end }}

{{/* The rules the operator needs, in the watched namespace or (allNamespaces) everywhere. Least
privilege, each verb for a reason (tests/e2e/test_helm_chart.py runs the operator with exactly
these and checks what else is refused). Deliberately absent: Secrets (the gateway's API keys are
mounted by the kubelet from spec.gateway.apiKeySecret; the operator never reads them), Pods (it
manages Deployments, never their Pods), update, deletecollection, and anything cluster-wide. */}}
{{- define "hadis.rules" -}}
# HadisServices: kopf lists and watches them (list, watch) and patches its finalizer and
# last-handled annotations into them (patch); nothing reads one by name
- apiGroups: [hadis.io]
  resources: [hadisservices]
  verbs: [list, watch, patch]
# the operator merge-patches conditions, the allocation and the demand into the status subresource
- apiGroups: [hadis.io]
  resources: [hadisservices/status]
  verbs: [patch]
# the gateway and per-variant worker Deployments: server-side apply (patch, and create: an apply
# that creates the object needs both), the live object read first to skip no-op writes (get), the
# service's own objects listed to find those of variants no longer in the spec (list), deleted (delete)
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, create, patch, delete]
# the gateway and headless worker Services and the cascade ConfigMap, the same way; get on
# ConfigMaps also reads a profile named by spec.profile.configMap
- apiGroups: [""]
  resources: [services, configmaps]
  verbs: [get, list, create, patch, delete]
# the operator's Events about allocations and failures, and kopf's about handler errors
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}
