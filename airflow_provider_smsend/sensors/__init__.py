"""smSend sensors: :mod:`.batch_status` (delivery of sent batches) and :mod:`.inbound` (SMS replies).

Import the classes from their modules (nothing is imported here, to keep DAG parsing fast)::

    from airflow_provider_smsend.sensors.batch_status import SmSendBatchStatusSensor
    from airflow_provider_smsend.sensors.inbound import SmSendInboundSmsSensor
"""
