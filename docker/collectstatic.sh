#!/bin/sh
# Image build steps: record the trusted plugins' bytes, and collect the static files with hashed names and gzip/brotli copies, under
# the production settings the server uses (whitenoise's manifest storage). Production settings
# refuse to load without secrets, so this step gets throwaway ones that exist only for this
# command and never reach the image. STATIC_ROOT (default /app/staticfiles) is where they go.
set -eu
SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')"
IMBI_ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
export SECRET_KEY IMBI_ENCRYPTION_KEYS
export DJANGO_SETTINGS_MODULE=imbi.settings.production
export DATABASE_URL="postgres://build@127.0.0.1:1/build"
export IMBI_SINGLE_NODE=1 REDIS_URL=
# The trust lock (IMBI_TRUSTED_PLUGIN_LOCK, /app/trusted-plugins.lock, root-owned): the bytes
# of each trusted distribution as built into this image. Only those run in-process; another
# distribution with a trusted name (one pip-installed later) runs isolated.
python manage.py plugin trust --record
exec python manage.py collectstatic --noinput
