import django.db.models.deletion
from django.db import migrations, models


def fill_names(apps, schema_editor):
    # The historical model's EncryptedJSONField decrypts; only the names are written.
    ServiceApplication = apps.get_model("plugins_core", "ServiceApplication")
    for app in ServiceApplication.objects.all():
        values = app.credentials if isinstance(app.credentials, dict) else {}
        ServiceApplication.objects.filter(pk=app.pk).update(
            names=sorted(k for k, v in values.items() if v)
        )


class Migration(migrations.Migration):

    dependencies = [
        ('plugins_core', '0003_plugin_storage'),
    ]

    operations = [
        migrations.AddField(
            model_name='serviceapplication',
            name='names',
            field=models.JSONField(blank=True, default=list, editable=False, help_text='Names of the stored credentials (never values), kept in step by save(); lets listings and badges say what is set without decrypting anything.'),
        ),
        migrations.CreateModel(
            name='ConnectionCheck',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('ok', 'OK'), ('failed', 'Failed')], max_length=8)),
                ('message', models.CharField(blank=True, max_length=500)),
                ('tested_at', models.DateTimeField()),
                ('duration_ms', models.PositiveIntegerField(default=0)),
                ('trigger', models.CharField(choices=[('wizard', 'Install wizard'), ('api', 'REST API'), ('admin', 'Admin button'), ('periodic', 'Periodic check')], max_length=16)),
                ('plugin', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='connection', to='plugins_core.plugin')),
            ],
            options={
                'constraints': [models.CheckConstraint(condition=models.Q(('status__in', ['ok', 'failed'])), name='connectioncheck_status')],
            },
        ),
        migrations.RunPython(fill_names, migrations.RunPython.noop),
    ]
