from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ('shopapp', '0013_lineitem_image_url'),
    ]

    operations = [
        migrations.AddField(
            model_name="task",
            name="claimed_by_job",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
