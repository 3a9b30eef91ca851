{{/* Names and labels shared by every template. */}}
{{- define "agentry.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "agentry.labels" -}}
app.kubernetes.io/part-of: agentry
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "agentry.selector" -}}
app.kubernetes.io/name: agentry-{{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "agentry.image" -}}
{{- $tag := .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s/%s:%s" .root.Values.image.registry .name $tag -}}
{{- end -}}

{{/*
Where a component's pods run: priorityClassName, nodeSelector, tolerations, affinity and
topologySpreadConstraints from its values; a constraint without a labelSelector gets the
component's pod labels. Call with (dict "root" . "component" "<name>" "values" <values>).
*/}}
{{- define "agentry.scheduling" -}}
{{- $v := .values -}}
{{- $selector := include "agentry.selector" (dict "root" .root "component" .component) | fromYaml -}}
{{- with $v.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.topologySpreadConstraints }}
{{- $constraints := list }}
{{- range . }}
{{- $c := . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $c = merge (dict "labelSelector" (dict "matchLabels" $selector)) $c }}
{{- end }}
{{- $constraints = append $constraints $c }}
{{- end }}
topologySpreadConstraints:
  {{- toYaml $constraints | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod and container security contexts that pass Pod Security "restricted". */}}
{{- define "agentry.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "agentry.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The webhook's admitted namespaces: the values' selector, else all but kube-system and ours. */}}
{{- define "agentry.webhookNamespaceSelector" -}}
{{- if .Values.webhook.namespaceSelector -}}
{{- toYaml .Values.webhook.namespaceSelector -}}
{{- else -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: ["kube-system", {{ .Release.Namespace | quote }}]
{{- end -}}
{{- end -}}

{{- define "agentry.webhookClientConfig" -}}
service:
  name: {{ include "agentry.fullname" .root }}-webhook
  namespace: {{ .root.Release.Namespace }}
  port: 443
  path: {{ .path }}
{{- end -}}

{{/*
Rules of the user roles (agentry-view ⊂ agentry-edit ⊂ agentry-admin). The data plane's
RBAC subresources: workspaces/files (get: list, read, download; update: upload, delete),
workspaces/exec (create), agentruntimes/tasks (create: send; get: list recent tasks) and
pipelines/logs (get).
*/}}
{{- define "agentry.userRules.view" -}}
- apiGroups: ["agentry.dev"]
  resources: ["agentruntimes", "pipelines", "sandboxfleets", "workspaces"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["agentry.dev"]
  resources: ["agentruntimes/status", "pipelines/status", "sandboxfleets/status", "sandboxfleets/scale", "workspaces/status"]
  verbs: ["get"]
- apiGroups: ["agentry.dev"]
  resources: ["pipelines/logs"]
  verbs: ["get"]
{{- end -}}

{{- define "agentry.userRules.edit" -}}
{{ include "agentry.userRules.view" . }}
- apiGroups: ["agentry.dev"]
  resources: ["agentruntimes", "pipelines", "sandboxfleets", "workspaces"]
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- apiGroups: ["agentry.dev"]
  resources: ["sandboxfleets/scale"]
  verbs: ["update", "patch"]
- apiGroups: ["agentry.dev"]
  resources: ["workspaces/files"]
  verbs: ["get", "update"]
- apiGroups: ["agentry.dev"]
  resources: ["workspaces/exec"]
  verbs: ["create"]
- apiGroups: ["agentry.dev"]
  resources: ["agentruntimes/tasks"]
  verbs: ["get", "create"]
{{- end -}}
