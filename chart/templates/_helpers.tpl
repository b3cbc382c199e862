{{- define "keptn-native.fullname" -}}
{{- .Values.name | default .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "keptn-native.labels" -}}
app.kubernetes.io/name: {{ include "keptn-native.fullname" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "keptn-native.selector" -}}
app.kubernetes.io/name: {{ include "keptn-native.fullname" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "keptn-native.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "keptn-native.fullname" .) -}}
{{- end -}}
