@dashboard
Feature: The dashboard shows an operator the cloud
  As an operator I need horizon to log me in through the front, whichever member answers, and
  to show my servers.

  Background:
    Given the lab is up

  Scenario: The admin logs into horizon and sees a server on the instances page
    Given a server from the lab's guest image is ACTIVE
    When the admin logs into the dashboard and opens the instances page
    Then the instances page lists the server
