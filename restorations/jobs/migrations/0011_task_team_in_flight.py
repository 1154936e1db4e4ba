from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0010_upload_files_deleted'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='task',
            index=models.Index(condition=models.Q(('state__gte', 0), models.Q(('state', 1), _negated=True)), fields=['team', '-created_at', '-id'], name='task_team_in_flight'),
        ),
    ]
