{{/* The chart's name, overridable. */}}
{{- define "clavis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release-scoped base name every object starts with. */}}
{{- define "clavis.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "clavis.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "clavis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one service's pods; call with (dict "root" $ "service" "licenses"). */}}
{{- define "clavis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clavis.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .service }}
{{- end -}}

{{- define "clavis.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "clavis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "clavis.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the chart-managed values (database URL, master key, SMTP URL). */}}
{{- define "clavis.secretName" -}}
{{- printf "%s-secrets" (include "clavis.fullname" .) -}}
{{- end -}}

{{/* Fail rendering early, with a message that says what to set, when a required setting is missing. */}}
{{- define "clavis.validate" -}}
{{- if and (not .Values.masterKey.value) (not .Values.masterKey.existingSecret) -}}
{{- fail "masterKey.value or masterKey.existingSecret is required: the master key wraps every stored secret (generate one with `head -c32 /dev/urandom | base64`)" -}}
{{- end -}}
{{- if and (not .Values.database.url) (not .Values.database.existingSecret) -}}
{{- fail "database.url or database.existingSecret is required: the services share one PostgreSQL database" -}}
{{- end -}}
{{- end -}}

{{/* The environment every Clavis container (services and the migration Job) gets. */}}
{{- define "clavis.env" -}}
- name: CLAVIS_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret | default (include "clavis.secretName" .) }}
      key: {{ if .Values.database.existingSecret }}{{ .Values.database.existingSecretKey }}{{ else }}database-url{{ end }}
- name: CLAVIS_MASTER_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.masterKey.existingSecret | default (include "clavis.secretName" .) }}
      key: {{ if .Values.masterKey.existingSecret }}{{ .Values.masterKey.existingSecretKey }}{{ else }}master-key{{ end }}
{{- if and .Values.masterKey.existingSecret .Values.masterKey.previousExistingSecretKey }}
- name: CLAVIS_MASTER_KEY_PREVIOUS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.masterKey.existingSecret }}
      key: {{ .Values.masterKey.previousExistingSecretKey }}
{{- end }}
{{- if or .Values.smtp.url .Values.smtp.existingSecret }}
- name: CLAVIS_SMTP_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.smtp.existingSecret | default (include "clavis.secretName" .) }}
      key: {{ if .Values.smtp.existingSecret }}{{ .Values.smtp.existingSecretKey }}{{ else }}smtp-url{{ end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
