"""smSend triggers, the deferrable halves of the sensors: :mod:`.batch_status` and :mod:`.inbound`.

Import the classes from their modules::

    from airflow_provider_smsend.triggers.batch_status import SmSendBatchStatusTrigger
    from airflow_provider_smsend.triggers.inbound import SmSendInboundSmsTrigger
"""
