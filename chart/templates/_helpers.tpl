{{/* Names: every object name comes from the release, so two releases never collide. */}}
{{- define "keptn-native.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "keptn-native.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "keptn-native.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The integration name: `source` of replies and the default queue group. */}}
{{- define "keptn-native.integrationName" -}}
{{- .Values.integrationName | default (include "keptn-native.fullname" .) -}}
{{- end -}}

{{- define "keptn-native.labels" -}}
app.kubernetes.io/name: {{ include "keptn-native.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "keptn-native.selector" -}}
app.kubernetes.io/name: {{ include "keptn-native.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "keptn-native.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "keptn-native.fullname" .) -}}
{{- end -}}

{{/* "true" when backend `.backend` is used by the default or by any per-stage rule. */}}
{{- define "keptn-native.usesBackend" -}}
{{- $ctx := .ctx -}}
{{- $used := eq $ctx.Values.deploy.backend .backend -}}
{{- range $ctx.Values.deploy.backendFor -}}
{{- if hasSuffix (printf "=%s" $.backend) (nospace .) -}}{{- $used = true -}}{{- end -}}
{{- end -}}
{{- if and $used (has "deployment" $ctx.Values.tasks) -}}true{{- end -}}
{{- end -}}

{{/* "true" when a cluster-facing backend (kubernetes or helm) is in use. */}}
{{- define "keptn-native.needsCluster" -}}
{{- if or (include "keptn-native.usesBackend" (dict "ctx" . "backend" "kubernetes")) (include "keptn-native.usesBackend" (dict "ctx" . "backend" "helm")) -}}true{{- end -}}
{{- end -}}

{{/* "true" when the chart binds a deployer role (so the token is worth mounting). */}}
{{- define "keptn-native.rbacBound" -}}
{{- if and .Values.rbac.create (include "keptn-native.needsCluster" .) (or .Values.deploy.namespaces .Values.deploy.namespaceSelector .Values.rbac.clusterWide) -}}true{{- end -}}
{{- end -}}

{{- define "keptn-native.automountToken" -}}
{{- $m := .Values.serviceAccount.automountToken | toString -}}
{{- if eq $m "auto" -}}
{{- include "keptn-native.rbacBound" . | eq "true" -}}
{{- else -}}
{{- eq $m "true" -}}
{{- end -}}
{{- end -}}

{{- define "keptn-native.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- $tag := $img.tag -}}
{{- if not $tag -}}
{{- $tag = .Chart.AppVersion -}}
{{- $v := $img.helmVariant | toString -}}
{{- if or (eq $v "true") (and (eq $v "auto") (include "keptn-native.usesBackend" (dict "ctx" . "backend" "helm"))) -}}
{{- $tag = printf "%s-helm" $tag -}}
{{- end -}}
{{- end -}}
{{- printf "%s:%s" $img.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The port of a URL (scheme default when absent). */}}
{{- define "keptn-native.urlPort" -}}
{{- $u := urlParse . -}}
{{- $hp := splitList ":" $u.host -}}
{{- if gt (len $hp) 1 -}}{{ last $hp }}
{{- else if eq $u.scheme "https" -}}443
{{- else if eq $u.scheme "http" -}}80
{{- else -}}4222
{{- end -}}
{{- end -}}

{{- define "keptn-native.configMapName" -}}
{{- .Values.configFile.existingConfigMap | default (printf "%s-config" (include "keptn-native.fullname" .)) -}}
{{- end -}}

{{- define "keptn-native.hasConfigFile" -}}
{{- if or .Values.configFile.existingConfigMap .Values.configFile.content -}}true{{- end -}}
{{- end -}}

{{/* Rules of the deployer role, by backend. */}}
{{- define "keptn-native.deployerRules" -}}
{{- if include "keptn-native.usesBackend" (dict "ctx" . "backend" "kubernetes") }}
# kubernetes backend: server-side apply of the service's Deployment and Service (create +
# patch), the image update without manifests (get + patch), the rollout wait (get the
# Deployment, list its Pods), and a rollback like `kubectl rollout undo` (list the
# Deployment's ReplicaSets, replace the Deployment with an earlier template: update).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, create, patch, update]
- apiGroups: [""]
  resources: [services]
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list]
{{- end }}
{{- if include "keptn-native.usesBackend" (dict "ctx" . "backend" "helm") }}
# helm backend: release records (Secrets), the objects of a typical application chart, the
# --wait checks (Pods, ReplicaSets) and hook Jobs. Charts with other kinds: rbac.extraRules.
- apiGroups: [""]
  resources: [secrets, configmaps, services, serviceaccounts, persistentvolumeclaims]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [get, list, watch]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, update, patch, delete]
{{- end }}
{{- with .Values.rbac.extraRules }}
{{ toYaml . }}
{{- end }}
{{- end -}}
